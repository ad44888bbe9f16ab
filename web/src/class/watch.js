// Watching one student's kernel live: its recent cells from the kernel's output
// history (webkernel.kernel.<id>.outputs, the last HISTORY messages), then every
// cell run in it, with its output as it appears (a prefix subscription on
// webkernel.kernel.<id>.iopub; seq numbers keep the two without gaps or
// repeats). Teachers
// may also run a cell in it, interrupt or restart it; observers only watch.
import { h } from '../dom.js';

const HISTORY = 200;
const ANSI = /\u001b\[[0-9;]*[A-Za-z]/g;

function plain(output) {
  const content = output.content || {};
  switch (output.msg_type) {
    case 'stream': return content.text || '';
    case 'execute_result':
    case 'display_data': return `${(content.data || {})['text/plain'] || ''}\n`;
    case 'error': return `${(content.traceback || [`${content.ename}: ${content.evalue}`]).join('\n').replace(ANSI, '')}\n`;
    default: return null;
  }
}

export class WatchPanel {
  // app: {wamp, isTeacher, say(text, kind), clearHelp(user), close()}
  constructor(app) {
    this.app = app;
    this.subscription = null;
    this.el = h('section', { class: 'watch', id: 'watch', 'aria-labelledby': 'watch-title', hidden: true });
  }

  async open(tile) {
    await this.close(false);
    this.user = tile.user;
    this.kernels = tile.kernels;
    this.log = h('div', { class: 'watch-log', 'aria-live': 'polite' });
    this.current = null;
    const select = h('select', { class: 'watch-kernel', 'aria-label': 'kernel' },
      tile.kernels.map((k) => h('option', { value: k.id }, `${k.id.slice(0, 8)} (${k.state})`)));
    select.addEventListener('change', () => this.watch(select.value));
    const closer = h('button', { type: 'button', class: 'watch-close', onclick: () => this.close() }, 'Close');
    this.el.replaceChildren(
      h('header', { class: 'watch-head' }, h('h2', { id: 'watch-title' }, `Watching ${tile.user}`), select, closer),
      tile.kernels.length ? this.log : h('p', { class: 'no-kernel' }, `${tile.user} has no kernel.`),
      this.app.isTeacher ? this.controls(tile) : h('p', { class: 'read-only' }, 'Read-only: observers watch.'));
    this.el.hidden = false;
    this.el.addEventListener('keydown', (event) => { if (event.key === 'Escape') this.close(); });
    if (tile.kernels.length) await this.watch(tile.kernels[0].id);
    closer.focus();
  }

  controls(tile) {
    const code = h('textarea', { class: 'watch-code', 'aria-label': `code to run in ${tile.user}'s kernel`, rows: '3', placeholder: 'Code to run in this kernel (Ctrl+Enter)' });
    const run = () => this.call('execute', { code: code.value });
    code.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) { event.preventDefault(); run(); }
    });
    return h('div', { class: 'watch-controls' }, code,
      h('div', { class: 'watch-buttons' },
        h('button', { type: 'button', class: 'primary watch-run', onclick: run }, '▶ Run'),
        h('button', { type: 'button', class: 'watch-interrupt', onclick: () => this.call('interrupt') }, '■ Interrupt'),
        h('button', { type: 'button', class: 'watch-restart', onclick: () => this.call('restart') }, '↻ Restart'),
        tile.help && h('button', { type: 'button', class: 'clear-help', onclick: () => this.app.clearHelp(tile.user) }, 'Clear help request')));
  }

  async call(name, kwargs = {}) {
    if (!this.kernelId) return;
    try {
      await this.app.wamp.call(`webkernel.kernel.${this.kernelId}.${name}`, kwargs);
    } catch (error) {
      if (error.uri !== 'webkernel.error.execution_failed') this.app.say(`${name}: ${error.message}`, 'problem');
    }
  }

  async watch(kernelId) {
    await this.unsubscribe();
    this.kernelId = kernelId;
    this.current = null;
    this.lastSeq = 0;
    const waiting = [];
    let loading = true;
    this.log.replaceChildren(h('p', { class: 'watch-note' }, 'Recent cells, then each cell as it runs.'));
    this.subscription = await this.app.wamp.subscribe(`webkernel.kernel.${kernelId}.iopub`,
      (output) => (loading ? waiting.push(output) : this.numbered(output)), { match: 'prefix' });
    try {
      const uri = `webkernel.kernel.${kernelId}.outputs`;
      const head = await this.app.wamp.call(uri, { since: 0, limit: 0 });
      const since = Math.max(head.first_seq - 1, head.last_seq - HISTORY, 0);
      const recent = await this.app.wamp.call(uri, { since, limit: HISTORY });
      for (const output of recent.outputs || []) this.numbered(output);
    } catch (error) {
      this.app.say(`history: ${error.message}`, 'problem');
    }
    loading = false;
    for (const output of waiting) this.numbered(output);
  }

  // an output once: history and live events overlap by seq
  numbered(output) {
    if (output.seq != null) {
      if (output.seq <= this.lastSeq) return;
      this.lastSeq = output.seq;
    }
    this.output(output);
  }

  output(output) {
    if (output.msg_type === 'execute_input') {
      const by = output.caller?.authid;
      const out = h('pre', { class: 'watch-output' });
      this.current = out;
      this.log.append(h('div', { class: 'watch-cell' },
        h('div', { class: 'watch-prompt' }, `In [${output.content?.execution_count ?? ' '}]`,
          by && by !== this.user ? ` run by ${by}` : ''),
        h('pre', { class: 'watch-input' }, output.content?.code || ''), out));
      this.log.scrollTop = this.log.scrollHeight;
      return;
    }
    const text = plain(output);
    if (text == null) return;
    if (!this.current) {
      this.current = h('pre', { class: 'watch-output' });
      this.log.append(this.current);
    }
    this.current.append(text);
    if (output.msg_type === 'error') this.current.classList.add('watch-error');
  }

  async unsubscribe() {
    const subscription = this.subscription;
    this.subscription = null;
    if (subscription) await this.app.wamp.unsubscribe(subscription); // nothing to do after a reconnect
  }

  async close(tellApp = true) {
    await this.unsubscribe();
    this.kernelId = null;
    this.el.hidden = true;
    if (tellApp && this.user) this.app.watchClosed(this.user);
    this.user = null;
  }
}
