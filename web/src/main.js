// The notebook page: connect to the service over WAMP, start or attach to a
// kernel, and wire the toolbar, the kernel picker and the notebook together.
//
// The token comes from ?token= (and is then taken out of the address bar and
// kept in this tab's sessionStorage, so a reload still works); the realm and
// whether anonymous access is allowed come from <meta> tags the server fills in.
// In multi-user mode (meta webkernel-auth "wampcra") the page signs in as a user
// instead: the sign-in form and the kept WAMP-CRA key are in signin.js. On a
// front for a classroom Crossbar.io ("user-ticket") the same form signs in by
// ticket and this App holds the password in memory only, to reconnect.
import 'katex/dist/katex.css';
import './style.css';
import { h } from './dom.js';
import { Wamp } from './wamp.js';
import { KernelClient } from './kernel.js';
import { Notebook } from './notebook.js';
import { openDialog, saveAsDialog } from './dialogs.js';
import { classroomParts } from './class/student.js';
import { EXPIRED, SAVED_REFUSED, SIGNED_OUT, forgetSignIn, keptAuth, keptSignIn, showSignInForm, ticketAuth } from './signin.js';

const TOKEN_KEY = 'webkernel.token';
const EVENTS = 'webkernel.kernels.events';
const REFUSALS = ['wamp.error.not_authorized', 'wamp.error.authentication_failed'];

function meta(name) {
  return document.querySelector(`meta[name="${name}"]`)?.content || '';
}

// The token from the address (then removed from it), else from this tab's storage.
function takeToken() {
  const url = new URL(window.location.href);
  const token = url.searchParams.get('token');
  if (token !== null) {
    url.searchParams.delete('token');
    window.history.replaceState(window.history.state, '', url.pathname + url.search + url.hash);
    try { sessionStorage.setItem(TOKEN_KEY, token); } catch { /* storage may be off */ }
    return token;
  }
  try { return sessionStorage.getItem(TOKEN_KEY); } catch { return null; }
}

// The router's WebSocket: the one a front names (meta webkernel-router: a Crossbar.io
// realm's /ws, see docs/scaling.md), else this service's own /ws.
function webSocketUrl() {
  const router = meta('webkernel-router');
  if (router) return router;
  const url = new URL('ws', window.location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  url.search = '';
  url.hash = '';
  return url.href;
}

function stateLabel(state) {
  return { starting: 'starting', idle: 'idle', busy: 'busy', restarting: 'restarting', dead: 'dead' }[state] || state || 'no kernel';
}

class App {
  // ticket: {user, password} a previous App of this page signed in with (by ticket)
  constructor(root, ticket = null) {
    this.root = root;
    this.realm = meta('webkernel-realm') || 'webkernel';
    const auth = meta('webkernel-auth').split(/\s+/);
    this.anonymous = auth.includes('anonymous');
    this.byTicket = auth.includes('user-ticket');
    this.plainWs = auth.includes('plain-ws');
    this.users = auth.includes('wampcra') || this.byTicket;
    this.ticket = ticket;
    this.staleSignIn = false;
    this.kernel = null;
    this.specs = { default: null, kernelspecs: {} };
    this.running = [];
    this.path = null;
    this.name = 'Untitled.ipynb';
    this.everConnected = false;
    this.notebook = new Notebook(this);
    this.build();
  }

  // -- layout ------------------------------------------------------------------------

  build() {
    const button = (label, title, onclick, extra = {}) => h('button', { type: 'button', title, onclick, ...extra }, label);
    // a notebook action, then the keyboard goes back to the active cell
    const action = (label, title, run, extra = {}) => button(label, title, () => {
      run();
      if (!this.notebook.active?.editor.hasFocus) this.notebook.active?.editor.focus();
    }, extra);
    this.nameEl = h('button', { type: 'button', class: 'notebook-name', title: 'Save under another name', onclick: () => this.saveAs() });
    this.kernelSelect = h('select', { class: 'kernel-select', 'aria-label': 'kernel' });
    this.kernelSelect.addEventListener('change', () => this.pickerChanged());
    this.kernelGo = button('Start', 'Start the chosen kernelspec, or attach to the chosen kernel', () => this.pickerGo(), { class: 'kernel-go' });
    this.kernelStatus = h('span', { class: 'kernel-status', id: 'kernel-status', role: 'status', dataset: { state: 'none' } }, 'no kernel');
    this.connectionStatus = h('span', { class: 'connection-status', id: 'connection-status', dataset: { state: 'connecting' } }, 'connecting…');
    this.cellType = h('select', { class: 'cell-type', 'aria-label': 'cell type' },
      h('option', { value: 'code' }, 'Code'), h('option', { value: 'markdown' }, 'Markdown'), h('option', { value: 'raw' }, 'Raw'));
    this.cellType.addEventListener('change', () => this.notebook.setType(this.cellType.value));
    const header = h('header', { class: 'topbar' },
      h('span', { class: 'brand' }, 'webkernel'), this.nameEl,
      h('span', { class: 'spacer' }),
      h('span', { class: 'kernel-picker' }, this.kernelSelect, this.kernelGo,
        button('Shut down', 'Shut the kernel down', () => this.shutdown(), { class: 'kernel-shutdown' })),
      this.kernelStatus, this.connectionStatus,
      this.users && this.signedInPart());
    const toolbar = h('nav', { class: 'toolbar', 'aria-label': 'notebook actions' },
      h('span', { class: 'group' },
        button('Open', 'Open a notebook from the notebook directory', () => this.open()),
        button('Save', 'Save (Ctrl+S)', () => this.save()),
        button('Download', 'Download as .ipynb', () => this.download())),
      h('span', { class: 'group' },
        action('+ Code', 'Insert a code cell below', () => this.notebook.insertBelow('code')),
        action('+ Markdown', 'Insert a markdown cell below', () => this.notebook.insertBelow('markdown')),
        action('↑', 'Move the cell up', () => this.notebook.move(undefined, -1), { 'aria-label': 'Move up' }),
        action('↓', 'Move the cell down', () => this.notebook.move(undefined, 1), { 'aria-label': 'Move down' }),
        action('Delete', 'Delete the cell', () => this.notebook.remove()),
        this.cellType),
      h('span', { class: 'group' },
        action('▶ Run', 'Run the cell and go to the next (Shift+Enter)', () => this.notebook.run(undefined, 'next'), { 'aria-label': 'Run' }),
        action('Run all', 'Run every cell, top to bottom', () => this.notebook.runAll()),
        action('■ Interrupt', 'Interrupt the kernel', () => this.interrupt(), { 'aria-label': 'Interrupt' }),
        action('↻ Restart', 'Restart the kernel', () => this.restart(), { 'aria-label': 'Restart' }),
        action('Clear outputs', 'Clear every output', () => this.notebook.clearOutputs())));
    this.messages = h('div', { class: 'messages', 'aria-live': 'polite' });
    this.root.replaceChildren(header, toolbar, this.notebook.el, this.messages);
    this.titleChanged();
  }

  signedInPart() {
    this.userEl = h('span', { class: 'signed-in-user', id: 'signed-in-user' });
    return h('span', { class: 'signed-in' }, this.userEl,
      h('button', { type: 'button', class: 'sign-out', title: 'Sign out of this tab', onclick: () => this.signOut() }, 'Sign out'));
  }

  activeChanged(cell) {
    if (cell) this.cellType.value = cell.type;
  }

  titleChanged() {
    this.nameEl.textContent = this.name + (this.notebook.dirty ? ' •' : '');
    document.title = `${this.notebook.dirty ? '• ' : ''}${this.name} – webkernel`;
  }

  problem(text) {
    this.say(text, 'problem');
  }

  info(text) {
    this.say(text, 'info');
  }

  say(text, kind) {
    const note = h('div', { class: `message message-${kind}`, role: kind === 'problem' ? 'alert' : 'status' }, text);
    this.messages.append(note);
    setTimeout(() => note.remove(), kind === 'problem' ? 8000 : 3000);
  }

  // -- connection ----------------------------------------------------------------------

  start() {
    let token = null;
    let auth = null;
    if (this.byTicket) {
      if (!this.ticket) {
        this.askToSignIn();
        return;
      }
      auth = ticketAuth(this.ticket.user, this.ticket.password);
    } else if (this.users) {
      const kept = keptSignIn();
      if (!kept) {
        this.askToSignIn();
        return;
      }
      auth = keptAuth(kept, () => { this.staleSignIn = true; });
    } else {
      token = takeToken();
      if (!token && !this.anonymous) {
        this.askForToken();
        return;
      }
    }
    this.wamp = new Wamp({
      url: webSocketUrl(), realm: this.realm, token, anonymous: this.anonymous, auth,
      handlers: { opened: (session, details) => this.opened(session, details), closed: (reason, details) => this.closed(reason, details) },
    });
    this.wamp.open();
    const first = this.notebook.append();
    this.notebook.dirty = false;
    this.titleChanged();
    this.notebook.activate(first);
    first.focus();
  }

  askForToken(refusal = null) {
    const field = h('input', { type: 'password', class: 'token-field', 'aria-label': 'token', autocomplete: 'off' });
    const form = h('form', { class: 'token-form' },
      refusal && h('p', { class: 'token-refused', role: 'alert' }, `The service refused the connection: ${refusal}`),
      h('p', {}, 'This service needs its token: open the URL it logged (with ?token=…), or paste the token here.'),
      field, h('button', { type: 'submit' }, 'Connect'));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      try { sessionStorage.setItem(TOKEN_KEY, field.value.trim()); } catch { /* storage may be off */ }
      window.location.reload();
    });
    this.root.replaceChildren(form);
    field.focus();
  }

  // Multi-user mode: the sign-in form; once signed in, the page loads again
  // (without the previous user's kernel or notebook in its address). By ticket
  // a new App takes over instead, holding the password (a reload would lose it).
  askToSignIn(message = null) {
    this.ticket = null;
    showSignInForm(this.root, {
      url: webSocketUrl(), realm: this.realm, message, byTicket: this.byTicket, plainWs: this.plainWs,
      signedIn: (ticket) => {
        if (!this.byTicket) {
          window.location.replace(window.location.pathname);
          return;
        }
        window.history.replaceState(null, '', window.location.pathname);
        new App(this.root, ticket).start();
      },
    });
  }

  // Forget the kept sign-in, end the session (GOODBYE), and show the form again.
  signOut() {
    forgetSignIn(SIGNED_OUT);
    this.signingOut = true;
    const leave = () => window.location.replace(window.location.pathname);
    try { this.wamp.connection.close('wamp.close.logout', 'signed out'); } catch { leave(); }
    setTimeout(leave, 2000); // if the service does not answer the GOODBYE
  }

  setConnection(state, text) {
    this.connectionStatus.dataset.state = state;
    this.connectionStatus.textContent = text;
  }

  async opened(session, details) {
    this.setConnection('connected', 'connected');
    this.authid = details?.authid;
    if (this.userEl && details?.authid) this.userEl.textContent = `${details.authid} (${details.authrole})`;
    try {
      await this.wamp.subscribe(EVENTS, (event) => this.kernelEvent(event));
      // the live classroom runs in webkernel's own service, not on a front's Crossbar.io
      if (this.users && !meta('webkernel-router')) await classroomParts(this, details);
      this.specs = await this.wamp.call('webkernel.kernelspecs');
      await this.refreshRunning();
      if (this.kernel) {
        await this.kernel.connected();
        this.refreshKernelModel();
      } else if (!this.everConnected) {
        await this.firstKernel();
      }
      this.everConnected = true;
    } catch (error) {
      this.problem(`after connecting: ${error.message}`);
    }
  }

  closed(reason, details) {
    if (this.users) return this.closedSignedIn(reason, details);
    if (REFUSALS.includes(details?.reason)) {
      try { sessionStorage.removeItem(TOKEN_KEY); } catch { /* storage may be off */ }
      this.setConnection('refused', 'not authorized');
      this.askForToken(details.message || details.reason);
      return true;
    }
    if (details?.will_retry) {
      this.setConnection('reconnecting', 'reconnecting…');
    } else {
      this.setConnection('disconnected', 'disconnected');
      setTimeout(() => this.wamp.open(), 3000);
    }
    return false;
  }

  // Multi-user mode: a kept sign-in the service no longer takes (a new salt: the
  // password changed) shows the form; signing out leaves; else reconnect.
  closedSignedIn(reason, details) {
    if (this.signingOut) {
      window.location.replace(window.location.pathname);
      return true;
    }
    if (this.staleSignIn || REFUSALS.includes(details?.reason)) {
      forgetSignIn();
      this.askToSignIn(this.staleSignIn ? EXPIRED : SAVED_REFUSED);
      return true;
    }
    if (details?.will_retry) {
      this.setConnection('reconnecting', 'reconnecting…');
    } else {
      this.setConnection('disconnected', details?.reason === 'webkernel.close.user_changed'
        ? 'signed out by the service: signing in again…' : 'disconnected');
      setTimeout(() => this.wamp.open(), 3000);
    }
    return false;
  }

  // -- kernels -------------------------------------------------------------------------

  async firstKernel() {
    const wanted = new URL(window.location.href).searchParams.get('kernel');
    const notebookPath = new URL(window.location.href).searchParams.get('notebook');
    if (notebookPath) await this.openPath(notebookPath);
    if (wanted && this.running.some((k) => k.id === wanted)) {
      await this.attach(wanted);
    } else {
      if (wanted) this.problem(`Kernel ${wanted} is not running any more; starting a new one.`);
      await this.startKernel(this.specs.default, { orOwn: true });
    }
  }

  async refreshRunning() {
    this.running = await this.wamp.call('webkernel.kernels.list');
    this.fillPicker();
  }

  refreshKernelModel() {
    const model = this.running.find((k) => k.id === this.kernel?.id);
    if (model) this.kernel.setModel(model);
    else if (this.kernel) this.kernel.setModel({ execution_state: 'dead', reason: 'it is not running any more' });
  }

  fillPicker(current = false) {
    const chosen = current ? '' : this.kernelSelect.value;
    const specGroup = h('optgroup', { label: 'Start a new kernel' });
    for (const [name, spec] of Object.entries(this.specs.kernelspecs || {})) {
      specGroup.append(h('option', { value: `spec:${name}` }, spec.spec?.display_name || name));
    }
    const runningGroup = h('optgroup', { label: 'Attach to a running kernel' });
    for (const model of this.running) {
      const mine = model.id === this.kernel?.id ? ' (this page)' : '';
      const label = `${model.name} ${model.id.slice(0, 8)}: ${model.execution_state}${mine}`;
      runningGroup.append(h('option', { value: `kernel:${model.id}` }, label));
    }
    this.kernelSelect.replaceChildren(specGroup, runningGroup);
    const fallback = this.kernel ? `kernel:${this.kernel.id}` : `spec:${this.specs.default}`;
    this.kernelSelect.value = [...this.kernelSelect.options].some((o) => o.value === chosen) ? chosen : fallback;
    this.pickerChanged();
  }

  pickerChanged() {
    const value = this.kernelSelect.value;
    this.kernelGo.textContent = value.startsWith('kernel:') ? 'Attach' : 'Start';
    this.kernelGo.disabled = Boolean(this.kernel) && value === `kernel:${this.kernel.id}`;
  }

  async pickerGo() {
    const [kind, value] = this.kernelSelect.value.split(/:(.*)/s);
    try {
      if (kind === 'kernel') await this.attach(value);
      else await this.startKernel(value);
    } catch (error) {
      this.problem(error.message);
    }
  }

  // orOwn: at the per-user quota (multi-user mode), attach to one's newest kernel instead
  async startKernel(name, { orOwn = false } = {}) {
    this.showKernelState('starting');
    let model;
    try {
      model = await this.wamp.call('webkernel.kernels.start', { kernel_name: name || null, wait: false });
    } catch (error) {
      this.showKernelState('none');
      const own = this.running.filter((k) => k.owner === this.authid);
      if (orOwn && error.uri === 'webkernel.error.kernel_limit' && own.length) {
        this.info('You have as many kernels as you may: this page uses your newest one.');
        await this.use(own[own.length - 1]);
        return;
      }
      this.problem(`cannot start a kernel: ${error.message}`);
      return;
    }
    await this.use(model);
    await this.refreshRunning();
    this.refreshKernelModel();
  }

  async attach(id) {
    const model = this.running.find((k) => k.id === id);
    if (!model) throw new Error(`no kernel ${id} is running`);
    await this.use(model);
  }

  async use(model) {
    if (this.kernel) await this.kernel.close();
    this.kernel = new KernelClient(this.wamp, model, this);
    this.kernelspec = this.specs.kernelspecs?.[model.name];
    this.setAddress();
    this.kernel.setModel(model);
    await this.kernel.connected();
    this.fillPicker(true);
  }

  kernelEvent({ event, kernel }) {
    if (!kernel) return;
    if (event === 'stopped') this.running = this.running.filter((k) => k.id !== kernel.id);
    else if (this.running.some((k) => k.id === kernel.id)) this.running = this.running.map((k) => (k.id === kernel.id ? kernel : k));
    else this.running = [...this.running, kernel];
    if (kernel.id === this.kernel?.id) {
      if (event === 'stopped') this.kernel.setModel({ ...kernel, execution_state: 'dead', reason: 'shut down' });
      else this.kernel.setModel(kernel);
    }
    if (event !== 'state') this.fillPicker();
  }

  // Called by the kernel client with its lifecycle / execution state.
  lifecycle(state, reason) {
    this.showKernelState(state, reason);
  }

  showKernelState(state, reason) {
    const name = this.kernelspec?.spec?.display_name || this.kernel?.model?.name || '';
    this.kernelStatus.dataset.state = state || 'none';
    this.kernelStatus.textContent = state === 'none' ? 'no kernel' : `${name ? `${name}: ` : ''}${stateLabel(state)}${reason ? ` (${reason})` : ''}`;
  }

  output(msg, execution) {
    this.notebook.output(msg, execution);
  }

  watched(msg) {
    return this.notebook.watched(msg);
  }

  gap(from, to) {
    this.problem(`Outputs ${from}–${to} of this kernel are no longer kept by the service and cannot be shown.`);
  }

  kernelspecInfo() {
    if (!this.kernel) return this.notebook.metadata.kernelspec || null;
    const spec = this.kernelspec?.spec || {};
    return { name: this.kernel.model.name, display_name: spec.display_name || this.kernel.model.name, language: spec.language || 'python' };
  }

  async interrupt() {
    if (!this.kernel) return;
    try { await this.kernel.interrupt(); } catch (error) { this.problem(`interrupt: ${error.message}`); }
  }

  async restart() {
    if (!this.kernel) return;
    try {
      await this.kernel.restart();
      this.info('The kernel restarted.');
    } catch (error) {
      this.problem(`restart: ${error.message}`);
    }
  }

  async shutdown() {
    if (!this.kernel) return;
    const kernel = this.kernel;
    try {
      await kernel.request('shutdown', {});
      await kernel.close();
      this.kernel = null;
      this.showKernelState('none');
      await this.refreshRunning();
    } catch (error) {
      this.problem(`shutdown: ${error.message}`);
    }
  }

  setAddress() {
    const url = new URL(window.location.href);
    url.searchParams.delete('token');
    if (this.kernel) url.searchParams.set('kernel', this.kernel.id);
    if (this.path) url.searchParams.set('notebook', this.path);
    else url.searchParams.delete('notebook');
    window.history.replaceState(window.history.state, '', url.pathname + url.search + url.hash);
  }

  // -- files -----------------------------------------------------------------------------

  async open() {
    const path = await openDialog((dir) => this.wamp.call('webkernel.notebooks.list', { path: dir }));
    if (path) await this.openPath(path);
  }

  async openPath(path) {
    try {
      const file = await this.wamp.call('webkernel.notebooks.get', { path });
      this.notebook.load(file.content);
      this.path = file.path;
      this.name = file.name;
      this.setAddress();
      this.titleChanged();
      if (file.warning) this.problem(file.warning);
      this.info(`Opened ${file.path}.`);
    } catch (error) {
      this.problem(`cannot open ${path}: ${error.message}`);
    }
  }

  async save() {
    if (!this.path) return this.saveAs();
    try {
      const saved = await this.wamp.call('webkernel.notebooks.save', { path: this.path, content: this.notebook.toJSON() });
      this.notebook.dirty = false;
      this.titleChanged();
      this.info(`Saved ${saved.path}.`);
    } catch (error) {
      this.problem(`cannot save ${this.path}: ${error.message}`);
    }
    return undefined;
  }

  async saveAs() {
    const path = await saveAsDialog(this.path || this.name);
    if (!path) return;
    this.path = path;
    this.name = path.split('/').pop();
    this.setAddress();
    await this.save();
  }

  download() {
    const blob = new Blob([JSON.stringify(this.notebook.toJSON(), null, 1) + '\n'], { type: 'application/x-ipynb+json' });
    const url = URL.createObjectURL(blob);
    const link = h('a', { href: url, download: this.name });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }
}

function boot() {
  const root = document.getElementById('app');
  new App(root).start();
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot);
else boot();
