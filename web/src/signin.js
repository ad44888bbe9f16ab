// Multi-user mode (twistd webkernel --users): the sign-in form, WAMP-CRA, and
// staying signed in across reloads. On a front for a classroom Crossbar.io
// (--front-auth ticket) the same form signs in by WAMP-Ticket instead (below).
//
// The password never leaves the page: the service's CHALLENGE carries the
// user's salt, iterations and key length; the page derives the PBKDF2 key
// (autobahn's auth_cra.derive_key) and signs the challenge with it. What the
// tab keeps (sessionStorage, this tab only, gone when it closes) is that
// derived key with the salt it was derived with, never the password. A new
// password gets a new salt in the users file: the next challenge's salt no
// longer matches the kept one, so the page drops it and shows the form (and a
// kept key would not sign for the new key anyway). See docs/notebook.md.
//
// By ticket (a classroom Crossbar.io cannot do WAMP-CRA with the users file, see
// docs/scaling.md) the password itself is the ticket: the page sends it only over
// wss:// or to loopback, unless the operator allowed plain ws:// (meta plain-ws),
// and keeps it in memory only (the App holds it to reconnect), never in storage:
// a reload or a new tab asks for it again.
import autobahn from 'autobahn-browser';
import { h } from './dom.js';

const KEPT = 'webkernel.signin';
const NOTICE = 'webkernel.signin.notice';

export const REFUSED = 'Wrong name or password. After a few failed attempts the service makes '
  + 'each next attempt wait (1 s, 2 s, 4 s … up to a minute): wait a moment before trying again.';
export const EXPIRED = 'Your saved sign-in is no longer valid (your password was changed, or '
  + 'your user removed): sign in again.';
export const SIGNED_OUT = 'You signed out.';
export const SAVED_REFUSED = 'The service refused your saved sign-in: sign in again. (After repeated '
  + 'failed attempts with your name the service makes the next one wait, up to a minute.)';

export const IN_CLEAR = 'This page will not send your password: the router it signs in at is '
  + 'reached without encryption (ws://, not wss://). Ask whoever runs this service to use wss:// '
  + '(or, on a trusted network, to allow it with --front-allow-plain-ws).';

// True if *url* is plain ws:// to a host that is not loopback: a password sent
// there would cross the network unencrypted (the front makes the same check,
// broker/web.py sends_in_clear).
export function sendsInClear(url) {
  let parsed;
  try { parsed = new URL(url); } catch { return true; }
  if (parsed.protocol !== 'ws:') return false;
  const host = parsed.hostname.toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost') || host === '[::1]') return false;
  return !/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

// Connection options that sign in by ticket, the password as the ticket.
export function ticketAuth(user, password) {
  return {
    authmethods: ['ticket'],
    authid: user,
    onchallenge: (session, method) => {
      if (method !== 'ticket') throw new Error(`unexpected sign-in method ${method}`);
      return password;
    },
  };
}

function storage() {
  try { return window.sessionStorage; } catch { return null; }
}

// The kept sign-in {user, salt, iterations, keylen, key}, or null.
export function keptSignIn() {
  try {
    const kept = JSON.parse(storage()?.getItem(KEPT) || 'null');
    return kept && typeof kept.user === 'string' && typeof kept.key === 'string' ? kept : null;
  } catch {
    return null;
  }
}

function keep(signIn) {
  try { storage()?.setItem(KEPT, JSON.stringify(signIn)); } catch { /* storage may be off */ }
}

// Forget the kept sign-in; *notice* is shown on the form the next load shows.
export function forgetSignIn(notice = null) {
  try {
    storage()?.removeItem(KEPT);
    if (notice) storage()?.setItem(NOTICE, notice);
  } catch { /* storage may be off */ }
}

function takeNotice() {
  try {
    const notice = storage()?.getItem(NOTICE);
    storage()?.removeItem(NOTICE);
    return notice;
  } catch {
    return null;
  }
}

function sameParameters(kept, extra) {
  return extra && kept.salt === extra.salt && kept.iterations === extra.iterations
    && kept.keylen === extra.keylen;
}

// Connection options that sign in with the kept key. If the challenge's salt is
// not the kept one (the password changed), *onStale* is called and the page
// answers nothing (autobahn aborts with wamp.error.cannot_authenticate, which
// the service does not count as a failed attempt).
export function keptAuth(kept, onStale) {
  return {
    authmethods: ['wampcra'],
    authid: kept.user,
    onchallenge: (session, method, extra) => {
      if (method !== 'wampcra' || !sameParameters(kept, extra)) {
        onStale();
        throw new Error('the kept sign-in no longer matches this user');
      }
      return autobahn.auth_cra.sign(kept.key, extra.challenge);
    },
  };
}

// Sign in with a name and password: resolves with {authid, authrole} once the
// service welcomed the session (then closed: the page reloads and signs in with
// the kept key; *byTicket*, the caller signs in again with the password it holds),
// rejects with an Error whose .kind is 'refused' or 'unreachable'.
export function signIn({ url, realm, user, password, byTicket = false }) {
  return new Promise((resolve, reject) => {
    let derived = null;
    let welcomed = null;
    const auth = byTicket ? ticketAuth(user, password) : {
      authmethods: ['wampcra'], authid: user,
      onchallenge: (session, method, extra) => {
        if (method !== 'wampcra') throw new Error(`unexpected sign-in method ${method}`);
        const key = autobahn.auth_cra.derive_key(password, extra.salt, extra.iterations, extra.keylen);
        derived = { salt: extra.salt, iterations: extra.iterations, keylen: extra.keylen, key };
        return autobahn.auth_cra.sign(key, extra.challenge);
      },
    };
    const connection = new autobahn.Connection({
      url, realm, ...auth, max_retries: 0, retry_if_unreachable: false, use_es6_promises: true,
    });
    connection.onopen = (session, details) => {
      welcomed = { authid: details?.authid || user, authrole: details?.authrole || '' };
      if (derived) keep({ user: welcomed.authid, ...derived });
      connection.close();
    };
    connection.onclose = (reason, details) => {
      if (welcomed) {
        resolve(welcomed);
      } else if (reason === 'unreachable') {
        reject(Object.assign(new Error('Cannot reach the service: is it running? Try again.'), { kind: 'unreachable' }));
      } else {
        const why = details?.reason === 'wamp.error.not_authorized' ? REFUSED
          : `The service refused the sign-in: ${details?.message || details?.reason || reason}`;
        reject(Object.assign(new Error(why), { kind: 'refused' }));
      }
      return true;
    };
    connection.open();
  });
}

// Show the sign-in form in *root*; a successful sign-in calls *signedIn*({user,
// password}) (*byTicket*: the caller keeps the password in memory to connect).
// *message* (or a notice a previous page left) is shown above the fields. By
// ticket over plain ws:// to a host not on loopback, unless *plainWs*, the form
// says why it will not sign in and sends nothing.
export function showSignInForm(root, { url, realm, message = null, signedIn, byTicket = false, plainWs = false }) {
  const inClear = byTicket && !plainWs && sendsInClear(url);
  const notice = inClear ? IN_CLEAR : message || takeNotice();
  const problem = h('p', { class: 'signin-problem', id: 'signin-problem', role: 'alert' }, notice || '');
  problem.hidden = !notice;
  const name = h('input', { type: 'text', id: 'signin-name', name: 'username', autocomplete: 'username',
    autocapitalize: 'none', spellcheck: 'false', required: true, 'aria-describedby': 'signin-problem' });
  const password = h('input', { type: 'password', id: 'signin-password', name: 'password',
    autocomplete: 'current-password', required: true, 'aria-describedby': 'signin-problem' });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h('form', { class: 'signin-form', 'aria-labelledby': 'signin-title' },
    h('h1', { id: 'signin-title' }, 'Sign in to webkernel'),
    problem,
    h('label', { for: 'signin-name' }, 'Name'), name,
    h('label', { for: 'signin-password' }, 'Password'), password,
    submit);
  submit.disabled = inClear;
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (inClear) return;
    submit.disabled = true;
    submit.textContent = 'Signing in…';
    problem.hidden = true;
    try {
      const user = name.value.trim();
      await signIn({ url, realm, user, password: password.value, byTicket });
      signedIn({ user, password: password.value });
    } catch (error) {
      problem.textContent = error.message;
      problem.hidden = false;
      password.value = '';
      submit.disabled = false;
      submit.textContent = 'Sign in';
      password.focus();
    }
  });
  root.replaceChildren(form);
  name.focus();
  return form;
}
