// The teacher's page at /class (multi-user mode, docs/classroom.md): one tile
// per student, live by subscription to webkernel.class.events (no polling; a
// one-second local tick only redraws "busy for N s"); filters; a click (or
// Enter) on a tile watches that student's kernel; teachers broadcast a cell.
// Signing in reuses the notebook page's form and kept WAMP-CRA key (signin.js).
import '../style.css';
import './class.css';
import { h } from '../dom.js';
import { Wamp } from '../wamp.js';
import { forgetSignIn, keptAuth, keptSignIn, showSignInForm, EXPIRED } from '../signin.js';
import { matches, tileElement } from './tiles.js';
import { WatchPanel } from './watch.js';

const EVENTS = 'webkernel.class.events';

function webSocketUrl() {
  const url = new URL('ws', window.location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  url.search = '';
  url.hash = '';
  return url.href;
}

class ClassApp {
  constructor(root) {
    this.root = root;
    this.realm = document.querySelector('meta[name="webkernel-realm"]')?.content || 'webkernel';
    this.tiles = new Map();      // user -> tile (the service's)
    this.elements = new Map();   // user -> its element
    this.dirty = new Set();
    this.offset = 0;             // service clock - this page's clock, in seconds
    this.filters = { error: false, busy: false, busySeconds: 30, help: false };
    this.stale = false;
  }

  now() {
    return Date.now() / 1000 + this.offset;
  }

  start() {
    const kept = keptSignIn();
    if (!kept) return this.signIn();
    this.wamp = new Wamp({
      url: webSocketUrl(), realm: this.realm, auth: keptAuth(kept, () => { this.stale = true; }),
      handlers: { opened: (s, d) => this.opened(d), closed: (r, d) => this.closed(r, d) },
    });
    this.wamp.open();
    return null;
  }

  signIn(message = null) {
    showSignInForm(this.root, { url: webSocketUrl(), realm: this.realm, message,
      signedIn: () => window.location.replace(window.location.pathname) });
  }

  closed(reason, details) {
    if (this.stale || details?.reason === 'wamp.error.not_authorized') {
      forgetSignIn();
      this.signIn(EXPIRED);
      return true;
    }
    if (this.status) {
      this.status.textContent = 'reconnecting…';
      this.status.dataset.state = 'reconnecting';
    }
    return false;
  }

  async opened(details) {
    this.role = details?.authrole;
    this.user = details?.authid;
    this.isTeacher = this.role === 'teacher';
    if (this.role !== 'teacher' && this.role !== 'observer') {
      this.root.replaceChildren(h('p', { class: 'boot', role: 'alert' },
        `This page is for teachers and observers; you are signed in as ${this.user} (${this.role}). `,
        h('a', { href: './' }, 'Open the notebook')));
      return;
    }
    if (!this.grid) this.build();
    this.status.textContent = 'connected';
    this.status.dataset.state = 'connected';
    await this.wamp.subscribe(EVENTS, (event) => this.event(event));
    const roster = await this.wamp.call('webkernel.class.roster');
    this.offset = roster.server_time - Date.now() / 1000;
    this.tiles.clear();
    for (const tile of roster.users) if (tile.role === 'student') this.tiles.set(tile.user, tile);
    for (const user of this.elements.keys()) this.dirty.add(user);
    for (const user of this.tiles.keys()) this.dirty.add(user);
    this.redraw();
    // a new session has none of the old one's subscriptions: watch again (history fills the gap)
    if (this.watch.kernelId) await this.watch.watch(this.watch.kernelId);
  }

  event(event) {
    if (event.server_time != null) this.offset = event.server_time - Date.now() / 1000;
    if (event.event === 'user' && event.user?.role === 'student') {
      this.tiles.set(event.user.user, event.user);
      this.changed(event.user.user);
      if (this.watch.user === event.user.user) this.watching(event.user);
    } else if (event.event === 'culled') {
      this.say(`${event.owner}'s kernel was shut down: ${event.reason}`, 'info');
    }
  }

  changed(user) {
    this.dirty.add(user);
    if (!this.frame) this.frame = requestAnimationFrame(() => { this.frame = null; this.redraw(); });
  }

  // -- layout --------------------------------------------------------------------

  build() {
    const check = (name, label) => {
      const box = h('input', { type: 'checkbox', id: `filter-${name}`, class: 'filter' });
      box.addEventListener('change', () => { this.filters[name] = box.checked; this.refilter(); });
      return h('label', { for: `filter-${name}` }, box, ` ${label}`);
    };
    const seconds = h('input', { type: 'number', id: 'filter-busy-seconds', min: '0', value: String(this.filters.busySeconds), 'aria-label': 'busy for more than this many seconds', class: 'filter-seconds' });
    seconds.addEventListener('input', () => { this.filters.busySeconds = Number(seconds.value) || 0; this.refilter(); });
    this.status = h('span', { class: 'connection-status', id: 'connection-status', role: 'status' }, 'connecting…');
    this.grid = h('div', { class: 'tiles', id: 'tiles', role: 'list', 'aria-label': 'students' });
    this.empty = h('p', { class: 'tiles-empty', hidden: true }, 'No student matches the filters.');
    this.messages = h('div', { class: 'messages', 'aria-live': 'polite' });
    this.watch = new WatchPanel(this);
    this.root.replaceChildren(
      h('header', { class: 'topbar' }, h('span', { class: 'brand' }, 'webkernel'), h('span', { class: 'class-title' }, 'Class'),
        h('span', { class: 'spacer' }), h('span', { class: 'signed-in-user' }, `${this.user} (${this.role})`), this.status,
        h('button', { type: 'button', class: 'sign-out', onclick: () => this.signOut() }, 'Sign out')),
      h('nav', { class: 'filters', 'aria-label': 'filters' }, check('error', 'has an error now'),
        h('span', { class: 'busy-filter' }, check('busy', 'busy for more than'), seconds, ' s'),
        check('help', 'asked for help')),
      this.isTeacher && this.broadcastPart(),
      this.isTeacher && this.handOutPart(),
      h('main', { class: 'class-main' }, h('div', { class: 'tiles-area' }, this.grid, this.empty), this.watch.el),
      this.messages);
    this.ticker = setInterval(() => this.tick(), 1000);
  }

  broadcastPart() {
    const code = h('textarea', { id: 'broadcast-code', class: 'broadcast-code', rows: '2', 'aria-label': 'cell to run in every student\'s kernel', placeholder: 'A cell to run in every student\'s kernel (Ctrl+Enter)' });
    this.broadcastResults = h('ul', { class: 'broadcast-results', id: 'broadcast-results', 'aria-live': 'polite' });
    const run = async () => {
      this.broadcastResults.replaceChildren(h('li', {}, 'running…'));
      try {
        const answer = await this.wamp.call('webkernel.class.broadcast', { code: code.value });
        this.broadcastResults.replaceChildren(...Object.entries(answer).map(([user, result]) => {
          const failed = Object.values(result.kernels).find((k) => k.status !== 'ok');
          return h('li', { dataset: { user, status: result.status } }, `${user}: ${result.status}`,
            failed && failed.ename ? ` (${failed.ename}: ${failed.evalue})` : '');
        }));
      } catch (error) {
        this.broadcastResults.replaceChildren(h('li', { role: 'alert' }, error.message));
      }
    };
    code.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) { event.preventDefault(); run(); }
    });
    return h('section', { class: 'broadcast', 'aria-label': 'broadcast a cell' }, code,
      h('button', { type: 'button', class: 'primary broadcast-run', id: 'broadcast-run', onclick: run }, 'Run in every student\'s kernel'),
      this.broadcastResults);
  }

  // hand out a notebook of the teacher's folder; collect it back (and download the zip)
  handOutPart() {
    const path = h('input', { type: 'text', id: 'handout-path', class: 'handout-path', placeholder: 'week1.ipynb', 'aria-label': 'notebook in your folder' });
    this.handOutResults = h('div', { class: 'handout-results', id: 'handout-results', 'aria-live': 'polite' });
    const act = async (procedure, show) => {
      this.handOutResults.replaceChildren('working…');
      try {
        show(await this.wamp.call(procedure, procedure.endsWith('hand_out') ? { path: path.value.trim() } : { name: path.value.trim() }));
      } catch (error) {
        this.handOutResults.replaceChildren(h('span', { role: 'alert' }, error.message));
      }
    };
    const handedOut = (answer) => this.handOutResults.replaceChildren(h('ul', { class: 'handout-list' },
      Object.entries(answer).map(([user, given]) => h('li', { dataset: { user, status: given.status } }, `${user}: ${given.status}${given.path && given.status === 'renamed' ? ` (${given.path})` : ''}`))));
    const collected = (answer) => this.handOutResults.replaceChildren(
      h('span', { id: 'collected' }, `collected ${answer.collected.length} into ${answer.path}`),
      answer.missing.length ? h('span', { id: 'missing' }, `; none from ${answer.missing.join(', ')}`) : '',
      answer.download ? h('a', { href: answer.download, id: 'collected-zip', class: 'download', download: '' }, ' Download zip') : '');
    return h('section', { class: 'broadcast handout', 'aria-label': 'hand out and collect' },
      h('label', { for: 'handout-path' }, 'Notebook'), path,
      h('button', { type: 'button', id: 'handout-run', onclick: () => act('webkernel.class.hand_out', handedOut) }, 'Hand out'),
      h('button', { type: 'button', id: 'collect-run', onclick: () => act('webkernel.class.collect', collected) }, 'Collect'),
      this.handOutResults);
  }

  // -- drawing -------------------------------------------------------------------

  redraw() {
    const now = this.now();
    for (const user of this.dirty) {
      const tile = this.tiles.get(user);
      const old = this.elements.get(user);
      if (!tile) { old?.remove(); this.elements.delete(user); continue; }
      const el = tileElement(tile, now, (u) => this.open(u));
      el.hidden = !matches(tile, this.filters, now);
      if (old) {
        const focused = document.activeElement === old;
        old.replaceWith(el);
        if (focused) el.focus();
      } else {
        this.insertSorted(user, el);
      }
      this.elements.set(user, el);
    }
    this.dirty.clear();
    this.empty.hidden = [...this.elements.values()].some((el) => !el.hidden) || !this.elements.size;
  }

  insertSorted(user, el) {
    const after = [...this.elements.keys()].filter((u) => u > user).sort()[0];
    if (after) this.elements.get(after).before(el);
    else this.grid.append(el);
  }

  refilter() {
    for (const user of this.tiles.keys()) this.dirty.add(user);
    this.redraw();
  }

  // busy-for-N-s texts and the busy filter move with time: redraw busy tiles
  tick() {
    for (const [user, tile] of this.tiles) if (tile.kernels.some((k) => k.state === 'busy')) this.dirty.add(user);
    if (this.dirty.size) this.redraw();
  }

  // -- watching ------------------------------------------------------------------

  open(user) {
    const tile = this.tiles.get(user);
    if (tile) this.watch.open(tile).catch((error) => this.say(error.message, 'problem'));
  }

  watching(tile) {
    this.watch.kernels = tile.kernels;
  }

  watchClosed(user) {
    this.elements.get(user)?.focus();
  }

  async clearHelp(user) {
    try {
      await this.wamp.call('webkernel.class.help_clear', { user });
    } catch (error) {
      this.say(error.message, 'problem');
    }
  }

  say(text, kind) {
    const note = h('div', { class: `message message-${kind}`, role: kind === 'problem' ? 'alert' : 'status' }, text);
    this.messages.append(note);
    setTimeout(() => note.remove(), kind === 'problem' ? 8000 : 5000);
  }

  signOut() {
    forgetSignIn('You signed out.');
    this.stale = true;
    this.wamp.connection.close();
    window.location.replace(window.location.pathname);
  }
}

new ClassApp(document.getElementById('app')).start();
