// Staying signed in (src/signin.js) without a browser: the kept WAMP-CRA key
// signs a challenge as the service checks it, and a challenge with another
// salt (the password changed) is not answered.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import autobahn from 'autobahn-browser';
import { keptAuth } from '../src/signin.js';

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
