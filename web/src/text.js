// A block of terminal text (a stream, a traceback, text/plain): ANSI colours,
// carriage returns that redraw the current line (progress bars), and
// truncation of very long text with a control to show all of it.
//
// Appending only updates strings; the DOM is brought up to date by render(),
// which the caller runs at most once per animation frame. Complete lines are
// converted to HTML once and appended; only the current, unfinished line and
// (when truncated) the last lines are redrawn each frame.
import { AnsiUp } from 'ansi_up';
import { h } from './dom.js';

export const HEAD_LINES = 200;
export const TAIL_LINES = 100;

function converter() {
  const ansi = new AnsiUp();
  ansi.use_classes = true; // colours as classes: no inline styles for the basic palette
  ansi.escape_html = true;
  return ansi;
}

// Resolve carriage returns in one line (no '\n'): each '\r' starts overwriting at column 0.
export function overlay(line) {
  if (!line.includes('\r')) return line;
  let out = '';
  for (const part of line.split('\r')) out = part + out.slice(part.length);
  return out;
}

// Keep an unfinished line exact but short: everything before its last '\r' resolved.
function compact(line) {
  const last = line.lastIndexOf('\r');
  if (last === -1 || line.indexOf('\r') === last) return line;
  return overlay(line.slice(0, last)) + '\r' + line.slice(last + 1);
}

function countLines(text, from = 0) {
  let n = 0;
  for (let i = text.indexOf('\n', from); i !== -1; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

// Index just after the n-th newline of text (text.length if it has fewer).
function afterLine(text, n) {
  let index = -1;
  for (let k = 0; k < n; k++) {
    index = text.indexOf('\n', index + 1);
    if (index === -1) return text.length;
  }
  return index + 1;
}

// Index where the last n lines of text start.
function lastLinesStart(text, n) {
  let index = text.length;
  if (text.endsWith('\n')) index--;
  for (let k = 0; k < n; k++) {
    index = text.lastIndexOf('\n', index - 1);
    if (index === -1) return 0;
  }
  return index + 1;
}

export class TextBlock {
  constructor(className) {
    this.done = '';      // complete lines, carriage returns resolved
    this.partial = '';   // the unfinished last line, raw (compacted)
    this.lines = 0;      // newlines in done
    this.expanded = false;
    this.truncated = false;
    this.renderedUpTo = 0;
    this.ansi = converter();
    this.head = h('span', { class: 'text-head' });
    this.current = h('span', { class: 'text-current' });
    this.showAll = h('button', { class: 'show-all', type: 'button', onclick: () => this.expand() }, 'Show all');
    this.gapText = h('span', { class: 'gap-text' });
    this.gap = h('div', { class: 'text-gap' }, this.gapText, this.showAll); // in the page only while truncated
    this.tail = h('span', { class: 'text-tail' });
    this.el = h('pre', { class: className }, this.head, this.tail, this.current);
  }

  append(chunk) {
    if (!chunk) return;
    const text = (this.partial + chunk).replace(/\r\n/g, '\n');
    const end = text.lastIndexOf('\n');
    if (end === -1) {
      this.partial = compact(text);
      return;
    }
    let complete = text.slice(0, end + 1);
    if (complete.includes('\r')) complete = complete.split('\n').map(overlay).join('\n');
    this.lines += countLines(complete);
    this.done += complete;
    this.partial = compact(text.slice(end + 1));
  }

  text() {
    return this.done + overlay(this.partial);
  }

  expand() {
    this.expanded = true;
    this.truncated = false;
    this.ansi = converter();
    this.head.innerHTML = this.ansi.ansi_to_html(this.done);
    this.renderedUpTo = this.done.length;
    this.gap.remove();
    this.tail.textContent = '';
    this.render();
  }

  render() {
    if (!this.expanded && this.lines > HEAD_LINES + TAIL_LINES) {
      this.renderTruncated();
    } else if (this.renderedUpTo < this.done.length) {
      this.head.insertAdjacentHTML('beforeend', this.ansi.ansi_to_html(this.done.slice(this.renderedUpTo)));
      this.renderedUpTo = this.done.length;
    }
    const line = overlay(this.partial);
    this.current.innerHTML = line ? converter().ansi_to_html(line) : '';
  }

  renderTruncated() {
    if (!this.truncated) {
      this.truncated = true;
      this.head.innerHTML = converter().ansi_to_html(this.done.slice(0, afterLine(this.done, HEAD_LINES)));
      this.head.after(this.gap);
    }
    const hidden = this.lines - HEAD_LINES - TAIL_LINES;
    this.gapText.textContent = `… ${hidden.toLocaleString('en')} more lines (${this.lines.toLocaleString('en')} in all) …`;
    this.tail.innerHTML = converter().ansi_to_html(this.done.slice(lastLinesStart(this.done, TAIL_LINES)));
  }
}
