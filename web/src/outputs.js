// A cell's output area: the outputs of its last run, kept in nbformat's shape
// (so saving is a copy) and drawn through the frame batcher.
import { h, joinText } from './dom.js';
import { invalidate, renderNow } from './frames.js';
import { renderBundle } from './mime.js';
import { TextBlock } from './text.js';

class StreamItem {
  constructor(name) {
    this.kind = 'stream';
    this.name = name;
    this.block = new TextBlock(`output-stream stream-${name === 'stderr' ? 'stderr' : 'stdout'}`);
    this.el = this.block.el;
  }

  append(text) {
    this.block.append(text);
    invalidate(this);
  }

  render() {
    this.block.render();
  }

  toJSON() {
    return { output_type: 'stream', name: this.name, text: this.block.text() };
  }
}

class RichItem {
  // output: nbformat display_data / execute_result
  constructor(output) {
    this.kind = output.output_type;
    this.output = output;
    this.displayId = null;
    this.el = h('div', { class: `output-rich output-${this.kind}` });
    invalidate(this);
  }

  update(data, metadata) {
    this.output = { ...this.output, data: data || {}, metadata: metadata || {} };
    invalidate(this);
  }

  render() {
    this.el.replaceChildren(renderBundle(this.output.data, this.output.metadata));
  }

  toJSON() {
    return this.output;
  }
}

class ErrorItem {
  constructor(output) {
    this.kind = 'error';
    this.output = output;
    this.block = new TextBlock('output-error');
    const traceback = (output.traceback || []).map(joinText).join('\n');
    this.block.append(traceback || `${output.ename}: ${output.evalue}`);
    this.el = this.block.el;
    invalidate(this);
  }

  render() {
    this.block.render();
  }

  toJSON() {
    return this.output;
  }
}

// An inline answer box for input() / getpass(); not saved with the notebook.
class InputItem {
  constructor(prompt, password, answer) {
    this.kind = 'input';
    this.field = h('input', {
      class: 'stdin-field', type: password ? 'password' : 'text', autocomplete: 'off',
      spellcheck: 'false', 'aria-label': prompt || 'input',
    });
    this.field.addEventListener('keydown', (event) => {
      if (event.key !== 'Enter') return;
      event.preventDefault();
      this.submit(answer, password);
    });
    this.el = h('div', { class: 'stdin' }, h('span', { class: 'stdin-prompt' }, prompt), this.field);
  }

  submit(answer, password) {
    const value = this.field.value;
    this.done(password ? '•'.repeat(Math.min(value.length, 8) || 1) : value);
    answer(value).catch((error) => this.note(`not sent: ${error.message || error}`));
  }

  // The kernel moved on (answered here, elsewhere, or interrupted): freeze the box.
  done(shown) {
    if (this.finished) return;
    this.finished = true;
    this.field.disabled = true;
    this.field.replaceWith(h('span', { class: 'stdin-answer' }, shown ?? ''));
  }

  note(text) {
    this.el.append(h('span', { class: 'stdin-note' }, ` (${text})`));
  }

  toJSON() {
    return null;
  }
}

export class OutputArea {
  // displays: the notebook's display_id registry {add(id, item), drop(item)}
  constructor(displays) {
    this.displays = displays;
    this.items = [];
    this.clearPending = false;
    this.el = h('div', { class: 'output-area' });
  }

  get length() {
    return this.items.filter((item) => item.kind !== 'input').length;
  }

  // A waiting input box stays the last thing in the area: output that arrives
  // while it waits (the kernel's stdout and stdin are separate channels, so
  // output printed before the prompt can arrive after it) goes above it.
  push(item) {
    const waiting = this.items.findIndex((other) => other.kind === 'input' && !other.finished);
    if (waiting === -1 || item.kind === 'input') {
      this.items.push(item);
      this.el.append(item.el);
    } else {
      this.items.splice(waiting, 0, item);
      this.el.insertBefore(item.el, this.items[waiting + 1].el);
    }
    return item;
  }

  beforeOutput() {
    if (this.clearPending) {
      this.clearPending = false;
      this.clearNow();
    }
  }

  // The last output that is not a waiting input box.
  lastOutput() {
    for (let i = this.items.length - 1; i >= 0; i--) {
      const item = this.items[i];
      if (item.kind !== 'input' || item.finished) return item.kind === 'input' ? null : item;
    }
    return null;
  }

  stream(name, text) {
    this.beforeOutput();
    let last = this.lastOutput();
    if (!last || last.kind !== 'stream' || last.name !== name) last = this.push(new StreamItem(name));
    last.append(text);
  }

  // nbformat output (display_data, execute_result, error, stream); transient.display_id registers it.
  add(output, displayId = null) {
    if (output.output_type === 'stream') return this.stream(output.name, joinText(output.text));
    this.beforeOutput();
    if (output.output_type === 'error') return this.push(new ErrorItem(output));
    const item = this.push(new RichItem(output));
    if (displayId) {
      item.displayId = displayId;
      this.displays.add(displayId, item);
    }
    return item;
  }

  input(prompt, password, answer) {
    this.beforeOutput();
    this.finishInput(); // a new request: any earlier one was answered
    return this.push(new InputItem(prompt, password, answer));
  }

  // Draw what still waits for a frame, so nothing shown after this precedes it.
  renderNow() {
    for (const item of this.items) renderNow(item);
  }

  finishInput() {
    for (const item of this.items) if (item.kind === 'input') item.done();
  }

  clear(wait = false) {
    if (wait) this.clearPending = true;
    else this.clearNow();
  }

  clearNow() {
    this.clearPending = false;
    for (const item of this.items) if (item.displayId) this.displays.drop(item);
    this.items = [];
    this.el.replaceChildren();
  }

  toJSON() {
    return this.items.map((item) => item.toJSON()).filter(Boolean);
  }

  load(outputs) {
    this.clearNow();
    for (const output of outputs || []) {
      if (output.output_type === 'stream') this.stream(output.name, joinText(output.text));
      else this.add({ ...output }, output.transient?.display_id || null);
    }
  }
}
