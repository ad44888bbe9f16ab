// The notebook: an ordered list of cells, the active one, running cells on the
// kernel, routing each output message to the cell it belongs to, and the
// nbformat form of it all (open, save, download).
import { h, joinText } from './dom.js';
import { Cell } from './cell.js';

// display_id -> the output items showing it, in any cell.
class DisplayRegistry {
  constructor() {
    this.items = new Map();
  }

  add(id, item) {
    if (!this.items.has(id)) this.items.set(id, new Set());
    this.items.get(id).add(item);
  }

  drop(item) {
    this.items.get(item.displayId)?.delete(item);
  }

  update(id, data, metadata) {
    for (const item of this.items.get(id) || []) item.update(data, metadata);
  }
}

export class Notebook {
  // app: {kernel, problem(text), info(text), save(), kernelChanged()}
  constructor(app) {
    this.app = app;
    this.cells = [];
    this.active = null;
    this.displays = new DisplayRegistry();
    this.metadata = {};
    this.dirty = false;
    this.el = h('main', { class: 'notebook', id: 'notebook' });
  }

  get kernel() {
    return this.app.kernel;
  }

  // -- cells ----------------------------------------------------------------------

  insert(index, options = {}) {
    const cell = new Cell(this, options);
    this.cells.splice(index, 0, cell);
    const next = this.cells[index + 1];
    this.el.insertBefore(cell.el, next ? next.el : null);
    this.markDirty();
    return cell;
  }

  append(options) {
    return this.insert(this.cells.length, options);
  }

  insertBelow(type = 'code') {
    const index = this.active ? this.cells.indexOf(this.active) + 1 : this.cells.length;
    const cell = this.insert(index, { type });
    cell.focus();
    return cell;
  }

  remove(cell = this.active) {
    const index = this.cells.indexOf(cell);
    if (index === -1) return;
    this.cells.splice(index, 1);
    cell.outputs.clearNow();
    cell.el.remove();
    if (!this.cells.length) this.append();
    const neighbour = this.cells[Math.min(index, this.cells.length - 1)];
    this.activate(neighbour);
    neighbour.focus();
    this.markDirty();
  }

  move(cell = this.active, by = -1) {
    const index = this.cells.indexOf(cell);
    const target = index + by;
    if (index === -1 || target < 0 || target >= this.cells.length) return;
    this.cells.splice(index, 1);
    this.cells.splice(target, 0, cell);
    const after = this.cells[target + 1];
    this.el.insertBefore(cell.el, after ? after.el : null);
    cell.focus();
    this.markDirty();
  }

  activate(cell) {
    if (this.active === cell) return;
    this.active?.el.classList.remove('active');
    this.active = cell;
    cell?.el.classList.add('active');
    this.app.activeChanged?.(cell);
  }

  focusNeighbour(cell, by) {
    const next = this.cells[this.cells.indexOf(cell) + by];
    if (!next) return false;
    this.activate(next);
    next.focus(by < 0);
    return true;
  }

  setType(type, cell = this.active) {
    if (!cell || cell.type === type) return;
    cell.setType(type);
    cell.focus();
    this.markDirty();
  }

  save() {
    this.app.save();
  }

  markDirty() {
    if (this.dirty) return;
    this.dirty = true;
    this.app.titleChanged?.();
  }

  // -- running ---------------------------------------------------------------------

  // how: 'next' (Shift+Enter), 'stay' (Ctrl+Enter), 'insert' (Alt+Enter)
  run(cell = this.active, how = 'stay') {
    if (!cell) return;
    this.activate(cell);
    if (cell.type === 'markdown') cell.renderMarkdown();
    else if (cell.type === 'code') this.execute(cell);
    if (how === 'next') {
      const index = this.cells.indexOf(cell);
      const next = this.cells[index + 1] || this.insert(index + 1);
      this.activate(next);
      next.focus();
    } else if (how === 'insert') {
      this.insertBelow();
    } else if (cell.type === 'code') {
      cell.editor.focus();
    }
  }

  execute(cell) {
    if (!cell.source().trim()) {
      cell.outputs.clearNow();
      return;
    }
    if (!this.kernel) {
      this.app.problem('No kernel: start one (or attach to one) first.');
      return;
    }
    this.kernel.execute(cell, cell.source());
  }

  runAll() {
    for (const cell of this.cells) {
      if (cell.type === 'markdown') cell.renderMarkdown();
      else if (cell.type === 'code') this.execute(cell);
    }
  }

  clearOutputs() {
    for (const cell of this.cells) {
      cell.outputs.clearNow();
      if (cell.state === 'idle' || cell.state === 'error') {
        cell.executionCount = null;
        cell.state = 'idle';
        cell.showPrompt();
      }
      cell.setNote(null);
    }
    this.markDirty();
  }

  async kernelRequest(name, kwargs) {
    if (!this.kernel) return null;
    try {
      return await this.kernel.request(name, kwargs);
    } catch (error) {
      this.app.problem(`${name}: ${error.message}`);
      return null;
    }
  }

  // -- output routing -------------------------------------------------------------------

  // Someone else's execution has begun: show it as a cell of its own, at the end.
  watched(msg) {
    const who = msg.caller?.authid ? `${msg.caller.authid}` : 'another client';
    // above a trailing empty cell, which stays the place to type
    const last = this.cells[this.cells.length - 1];
    const blank = last && last.type === 'code' && last.state === 'idle' && !last.source().trim();
    const cell = this.insert(blank ? this.cells.length - 1 : this.cells.length,
      { type: 'code', source: joinText(msg.content?.code) });
    cell.setNote(`Run by ${who} from another page or client.`);
    cell.state = 'running';
    cell.showPrompt();
    return { cell, mine: false, msgId: null, error: false };
  }

  output(msg, execution) {
    const content = msg.content || {};
    if (msg.msg_type === 'update_display_data') {
      this.displays.update(content.transient?.display_id, content.data, content.metadata);
      return;
    }
    const cell = execution?.cell;
    if (!cell) return;
    const outputs = cell.outputs;
    switch (msg.msg_type) {
      case 'execute_input':
        cell.started(content.execution_count);
        break;
      case 'stream':
        outputs.stream(content.name, content.text || '');
        break;
      case 'display_data':
        outputs.add({ output_type: 'display_data', data: content.data || {}, metadata: content.metadata || {} },
          content.transient?.display_id || null);
        break;
      case 'execute_result':
        cell.started(content.execution_count);
        outputs.add({
          output_type: 'execute_result', data: content.data || {}, metadata: content.metadata || {},
          execution_count: content.execution_count ?? null,
        }, content.transient?.display_id || null);
        break;
      case 'error':
        outputs.add({ output_type: 'error', ename: content.ename, evalue: content.evalue, traceback: content.traceback || [] });
        break;
      case 'clear_output':
        outputs.clear(Boolean(content.wait));
        break;
      case 'input_request':
        this.inputRequested(cell, content, execution);
        break;
      default:
        break;
    }
  }

  inputRequested(cell, content, execution) {
    const item = cell.outputs.input(content.prompt || '', Boolean(content.password), (value) => {
      const sent = this.kernel.request('input', { value });
      if (execution.mine) this.active?.editor.focus();
      return sent;
    });
    if (execution.mine) item.field.focus();
  }

  // -- nbformat ------------------------------------------------------------------------

  toJSON() {
    const kernelspec = this.app.kernelspecInfo?.();
    const metadata = { ...this.metadata };
    if (kernelspec) metadata.kernelspec = kernelspec;
    if (!metadata.language_info) metadata.language_info = { name: 'python' };
    return {
      nbformat: 4, nbformat_minor: 5, metadata,
      cells: this.cells.map((cell) => cell.toJSON()),
    };
  }

  load(notebook) {
    for (const cell of this.cells) cell.outputs.clearNow();
    this.cells = [];
    this.active = null;
    this.el.replaceChildren();
    this.metadata = notebook.metadata || {};
    const validId = /^[a-zA-Z0-9_-]{1,64}$/;
    const seen = new Set();
    for (const cell of notebook.cells || []) {
      const id = validId.test(cell.id || '') && !seen.has(cell.id) ? cell.id : null;
      if (id) seen.add(id);
      this.append({
        id,
        type: ['code', 'markdown', 'raw'].includes(cell.cell_type) ? cell.cell_type : 'raw',
        source: joinText(cell.source),
        outputs: cell.cell_type === 'code' ? cell.outputs : [],
        executionCount: cell.execution_count ?? null,
        metadata: cell.metadata || {},
      });
    }
    if (!this.cells.length) this.append();
    this.dirty = false;
    this.activate(this.cells[0]);
    this.cells[0].focus();
  }
}
