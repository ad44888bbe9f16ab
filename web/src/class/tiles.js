// The class page's tiles: one per student, from the roster's tiles
// (webkernel.class.roster / webkernel.class.events, docs/classroom.md).
// Pure functions of a tile and the time, so the page re-renders only what changed.
import { h } from '../dom.js';

// "idle", "busy for 12 s", "dead", … for a kernel at *now* (service seconds).
export function stateText(kernel, now) {
  if (kernel.state === 'busy' && kernel.busy_since != null) {
    return `busy for ${Math.max(0, Math.floor(now - kernel.busy_since))} s`;
  }
  return kernel.state || 'unknown';
}

export function hasError(tile) {
  return tile.kernels.some((k) => k.last_error);
}

export function busyFor(tile, now) {
  const since = tile.kernels.filter((k) => k.state === 'busy' && k.busy_since != null).map((k) => k.busy_since);
  return since.length ? now - Math.min(...since) : 0;
}

// Does *tile* pass the filters {error, busy, busySeconds, help}?
export function matches(tile, filters, now) {
  if (filters.error && !hasError(tile)) return false;
  if (filters.help && !tile.help) return false;
  if (filters.busy && !(busyFor(tile, now) > filters.busySeconds)) return false;
  return true;
}

function kernelPart(kernel, now) {
  const error = kernel.last_error;
  return h('div', { class: 'tile-kernel', dataset: { kernel: kernel.id, state: kernel.state || '' } },
    h('span', { class: 'kernel-state' }, stateText(kernel, now)),
    kernel.state === 'dead' && kernel.reason && h('span', { class: 'kernel-reason' }, ` (${kernel.reason})`),
    kernel.last_cell != null && h('pre', { class: 'last-cell' }, kernel.last_cell),
    error && h('div', { class: 'last-error' }, `${error.ename}: ${error.evalue}`));
}

// The tile element of a student (a focusable button-like article).
export function tileElement(tile, now, onOpen) {
  const signedIn = tile.signed_in > 0;
  const el = h('article', {
    class: 'tile', tabindex: '0', role: 'button',
    'aria-label': `${tile.user}: open to watch`,
    dataset: { user: tile.user, signedIn: String(signedIn), error: String(hasError(tile)), help: String(Boolean(tile.help)) },
  },
  h('h2', { class: 'tile-name' },
    h('span', { class: 'presence', title: signedIn ? 'signed in' : 'not signed in' }, signedIn ? '●' : '○'),
    ` ${tile.user}`,
    h('span', { class: 'visually-hidden' }, signedIn ? ' (signed in)' : ' (not signed in)')),
  tile.help && h('div', { class: 'help-request', role: 'note' },
    `asked for help${tile.help.message ? `: ${tile.help.message}` : ''}`),
  tile.kernels.length ? tile.kernels.map((k) => kernelPart(k, now)) : h('div', { class: 'no-kernel' }, 'no kernel'));
  el.addEventListener('click', () => onOpen(tile.user));
  el.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      onOpen(tile.user);
    }
  });
  return el;
}
