// Staying signed in (src/signin.js) without a browser: the kept WAMP-CRA key
// signs a challenge as the service checks it, and a challenge with another
// salt (the password changed) is not answered; by ticket, where a password may go.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import autobahn from 'autobahn-browser';
import { keptAuth, sendsInClear, ticketAuth } from '../src/signin.js';

// autobahn.wamp.auth.derive_key('secret password', 'salt123', 100, 32) and
// compute_wcs(key, '{"nonce":"x"}'), computed by Autobahn|Python (the service's side)
const KEY = 'qDgkdXMTa6j3J5ZHrgpCuByIgybaM/vV59pnnO3TTnc=';
const SIGNATURE = 'BzAjxUnG1cTyl5FW+rgRawXPQge696JngTtF3dTscbs=';

test('the page derives the key as the service stores it', () => {
  assert.equal(autobahn.auth_cra.derive_key('secret password', 'salt123', 100, 32), KEY);
});

test('a kept key signs a challenge with its own salt', () => {
  let stale = false;
  const auth = keptAuth({ user: 'alice', salt: 'salt123', iterations: 100, keylen: 32, key: KEY }, () => { stale = true; });
  assert.deepEqual(auth.authmethods, ['wampcra']);
  assert.equal(auth.authid, 'alice');
  const signature = auth.onchallenge(null, 'wampcra', { challenge: '{"nonce":"x"}', salt: 'salt123', iterations: 100, keylen: 32 });
  assert.equal(signature, SIGNATURE);
  assert.equal(stale, false);
});

test('a challenge with a new salt is not answered: the kept sign-in is stale', () => {
  let stale = false;
  const auth = keptAuth({ user: 'alice', salt: 'salt123', iterations: 100, keylen: 32, key: KEY }, () => { stale = true; });
  assert.throws(() => auth.onchallenge(null, 'wampcra', { challenge: 'c', salt: 'new salt', iterations: 100, keylen: 32 }));
  assert.equal(stale, true);
});

// By ticket (a front for a classroom Crossbar.io): the password is the ticket,
// sent only where it is encrypted or stays on this machine.
test('a password goes as the ticket, and to a ticket challenge only', () => {
  const auth = ticketAuth('alice', 'alice-pass');
  assert.deepEqual(auth.authmethods, ['ticket']);
  assert.equal(auth.authid, 'alice');
  assert.equal(auth.onchallenge(null, 'ticket', {}), 'alice-pass');
  assert.throws(() => auth.onchallenge(null, 'wampcra', { challenge: 'c' }));
});

test('plain ws:// to a host that is not loopback would send the password in clear', () => {
  for (const url of ['ws://10.0.0.7:8080/ws', 'ws://crossbar.example/ws', 'ws://[2001:db8::1]/ws',
    'ws://127.0.0.1.example/ws', 'not a url']) {
    assert.equal(sendsInClear(url), true, url);
  }
  for (const url of ['wss://crossbar.example/ws', 'ws://127.0.0.1:8080/ws', 'ws://127.3.4.5/ws',
    'ws://localhost:8080/ws', 'ws://[::1]:8080/ws', 'ws://LOCALHOST/ws']) {
    assert.equal(sendsInClear(url), false, url);
  }
});
