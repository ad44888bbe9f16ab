// One cell: its editor, its prompt ([ ], [*], [n]), its outputs, and for a
// markdown cell the rendered view (double-click to edit again).
import { h, joinText, newId, toCodePoints, fromCodePoints } from './dom.js';
import { createEditor } from './editor.js';
import { OutputArea } from './outputs.js';
import { markdownToFragment } from './markdown.js';
import { TextBlock } from './text.js';

export class Cell {
  constructor(notebook, { type = 'code', source = '', outputs = [], executionCount = null, metadata = {}, id = null } = {}) {
    this.notebook = notebook;
    this.type = type;
    this.id = id || newId();
    this.metadata = metadata || {};
    this.executionCount = executionCount;
    this.state = 'idle';
    this.prompt = h('div', { class: 'cell-prompt' });
    this.note = h('div', { class: 'cell-note', hidden: true });
    this.editor = createEditor(this, { doc: source, language: type === 'markdown' ? 'markdown' : 'python' });
    this.input = h('div', { class: 'cell-input' }, this.editor.dom);
    this.rendered = h('div', { class: 'rendered-markdown', hidden: true, title: 'Double-click to edit' });
    this.rendered.addEventListener('dblclick', () => this.edit());
    this.inspection = h('div', { class: 'inspection', hidden: true, role: 'tooltip' });
    this.outputs = new OutputArea(notebook.displays);
    this.el = h('div', { class: 'cell', dataset: { cellId: this.id } },
      this.prompt,
      h('div', { class: 'cell-body' }, this.note, this.input, this.rendered, this.inspection, this.outputs.el));
    this.el.addEventListener('mousedown', () => notebook.activate(this));
    this.outputs.load(outputs);
    this.setType(type);
    this.showPrompt();
    if (type === 'markdown' && source) this.renderMarkdown();
  }

  source() {
    return this.editor.state.doc.toString();
  }

  setSource(text) {
    this.editor.dispatch({ changes: { from: 0, to: this.editor.state.doc.length, insert: text } });
  }

  setType(type) {
    this.type = type;
    this.el.classList.toggle('cell-code', type === 'code');
    this.el.classList.toggle('cell-markdown', type === 'markdown');
    this.el.classList.toggle('cell-raw', type === 'raw');
    this.editor.setLanguage(type === 'markdown' ? 'markdown' : 'python');
    if (type !== 'code') this.outputs.clearNow();
    if (type !== 'markdown') this.edit(false);
    this.showPrompt();
  }

  focus(atEnd = false) {
    if (this.type === 'markdown' && !this.rendered.hidden) this.edit(false);
    this.editor.focus();
    const position = atEnd ? this.editor.state.doc.length : 0;
    this.editor.dispatch({ selection: { anchor: position } });
    this.el.scrollIntoView({ block: 'nearest' });
  }

  changed() {
    this.notebook.markDirty();
  }

  // -- markdown ---------------------------------------------------------------

  renderMarkdown() {
    const source = this.source();
    this.rendered.replaceChildren(source.trim()
      ? markdownToFragment(source)
      : h('p', { class: 'empty-markdown' }, 'Empty markdown cell: double-click to edit'));
    this.rendered.hidden = false;
    this.input.hidden = true;
  }

  edit(focus = true) {
    this.rendered.hidden = true;
    this.input.hidden = false;
    if (focus) this.editor.focus();
  }

  // -- execution ----------------------------------------------------------------

  showPrompt() {
    const marks = { queued: '*', running: '*' };
    const shown = marks[this.state] ?? (this.executionCount ?? ' ');
    this.prompt.textContent = this.type === 'code' ? `[${shown}]:` : '';
    this.el.dataset.state = this.state;
  }

  queued() {
    this.outputs.clearNow();
    this.setNote(null);
    this.state = 'queued';
    this.showPrompt();
  }

  started(count) {
    this.state = 'running';
    if (Number.isInteger(count)) this.executionCount = count;
    this.showPrompt();
  }

  finished(error = false) {
    this.state = error ? 'error' : 'idle';
    this.outputs.finishInput();
    this.outputs.renderNow(); // the prompt says "done" only with the last output drawn
    this.showPrompt();
    this.notebook.markDirty();
  }

  notRun(reason) {
    this.state = 'idle';
    this.showPrompt();
    this.setNote(reason);
  }

  setNote(text) {
    this.note.hidden = !text;
    this.note.textContent = text || '';
  }

  // -- completion and inspection ----------------------------------------------------

  // The kernel's complete_reply, positions turned into editor offsets.
  async complete(code, position) {
    const reply = await this.notebook.kernelRequest('complete', {
      code, cursor_pos: toCodePoints(code, position),
    });
    if (!reply) return null;
    return {
      ...reply, code,
      from: fromCodePoints(code, reply.cursor_start ?? toCodePoints(code, position)),
      to: fromCodePoints(code, reply.cursor_end ?? toCodePoints(code, position)),
    };
  }

  async inspect() {
    const code = this.source();
    const position = this.editor.state.selection.main.head;
    const reply = await this.notebook.kernelRequest('inspect', {
      code, cursor_pos: toCodePoints(code, position), detail_level: 0,
    });
    if (!reply) return;
    const text = reply.found ? joinText(reply.data?.['text/plain']) : 'Nothing found to inspect here.';
    const block = new TextBlock('inspection-text');
    block.append(text);
    block.render();
    const close = h('button', { class: 'inspection-close', type: 'button', title: 'Close (Escape)', onclick: () => this.closeInspection() }, '×');
    this.inspection.replaceChildren(close, block.el);
    this.inspection.hidden = false;
  }

  closeInspection() {
    if (this.inspection.hidden) return false;
    this.inspection.hidden = true;
    this.inspection.replaceChildren();
    return true;
  }

  // -- nbformat -------------------------------------------------------------------------

  toJSON() {
    const cell = { id: this.id, cell_type: this.type, metadata: this.metadata, source: this.source() };
    if (this.type === 'code') {
      cell.execution_count = Number.isInteger(this.executionCount) ? this.executionCount : null;
      cell.outputs = this.outputs.toJSON();
    }
    return cell;
  }
}
