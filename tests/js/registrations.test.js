// Interop: shared registrations (invocation policies single, roundrobin, random,
// first, last) across several autobahn-js callees, and pattern-based registrations
// (prefix, wildcard, and the spec's precedence rules) with INVOCATION.Details.procedure.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const {
  TEST_TIMEOUT_MS, joined, joinedMany, uniqueUri, withTimeout, expectWampError,
} = require('./helpers');

// Register `proc` with `options` on each callee, in order; each answers with its name.
async function registerNamed(callees, proc, options) {
  const registrations = [];
  for (const [i, callee] of callees.entries()) {
    registrations.push(await withTimeout(
      callee.session.register(proc, () => `callee${i}`, options), `REGISTERED for callee${i}`));
  }
  return registrations;
}

// Make `n` sequential calls; return who answered each.
async function callMany(caller, proc, n) {
  const answers = [];
  for (let i = 0; i < n; i += 1) {
    answers.push(await withTimeout(caller.session.call(proc), `RESULT of call ${i}`));
  }
  return answers;
}

test('invoke "roundrobin": calls rotate over the callees in registration order',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const [caller, ...callees] = await joinedMany(t, 4);
    const proc = uniqueUri('shared.roundrobin');
    await registerNamed(callees, proc, { invoke: 'roundrobin' });
    const answers = await callMany(caller, proc, 9);
    for (let i = 0; i + 3 < answers.length; i += 1) {
      assert.equal(answers[i + 3], answers[i], `not a rotation of three: ${answers}`);
    }
    assert.deepEqual([...answers.slice(0, 3)].sort(), ['callee0', 'callee1', 'callee2'], `${answers}`);
    // "ordered by the order of registration": callee1 follows callee0, callee2 follows callee1.
    const i0 = answers.indexOf('callee0');
    assert.deepEqual(answers.slice(i0, i0 + 3), ['callee0', 'callee1', 'callee2'], `${answers}`);
  });

test('invoke "first": the first callee gets every call, the next one takes over when it leaves',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const [caller, a, b] = await joinedMany(t, 3);
    const proc = uniqueUri('shared.first');
    const [regA] = await registerNamed([a, b], proc, { invoke: 'first' });
    assert.deepEqual(await callMany(caller, proc, 4), Array(4).fill('callee0'));
    await regA.unregister();
    assert.deepEqual(await callMany(caller, proc, 2), Array(2).fill('callee1'));
  });

test('invoke "last": the last callee gets every call, the previous one takes over when it leaves',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const [caller, a, b] = await joinedMany(t, 3);
    const proc = uniqueUri('shared.last');
    await registerNamed([a, b], proc, { invoke: 'last' });
    assert.deepEqual(await callMany(caller, proc, 4), Array(4).fill('callee1'));
    b.connection.close();
    await withTimeout(b.closed, 'the last callee to leave');
    assert.deepEqual(await callMany(caller, proc, 2), Array(2).fill('callee0'));
  });

test('invoke "random": both callees are picked within 60 calls',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const [caller, a, b] = await joinedMany(t, 3);
    const proc = uniqueUri('shared.random');
    await registerNamed([a, b], proc, { invoke: 'random' });
    const seen = new Set();
    for (let i = 0; i < 60 && seen.size < 2; i += 1) {
      seen.add(await withTimeout(caller.session.call(proc), 'RESULT'));
    }
    // A fair pick misses one of two callees 60 times running with p = 2^-59.
    assert.deepEqual([...seen].sort(), ['callee0', 'callee1']);
  });

test('invoke "single" (explicit): a second registration fails with wamp.error.procedure_already_exists',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const [a, b] = await joinedMany(t, 2);
    const proc = uniqueUri('shared.single');
    await a.session.register(proc, () => 'a', { invoke: 'single' });
    const err = await expectWampError(b.session.register(proc, () => 'b', { invoke: 'single' }));
    assert.equal(err.error, 'wamp.error.procedure_already_exists');
  });

test('a registration whose invocation policy differs from the existing one is refused',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const [a, b, caller] = await joinedMany(t, 3);
    const proc = uniqueUri('shared.mismatch');
    await a.session.register(proc, () => 'a', { invoke: 'roundrobin' });
    // The spec says the Dealer MUST fail it but names no URI; Crossbar.io uses
    // wamp.error.procedure_exists_with_different_invocation_policy.
    const err = await expectWampError(b.session.register(proc, () => 'b', { invoke: 'first' }));
    assert.match(err.error, /^wamp\.error\./);
    assert.equal(await caller.session.call(proc), 'a');
  });

test('prefix registration: matching calls reach it with details.procedure = the concrete URI',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const [callee, caller] = await joinedMany(t, 2);
    const prefix = uniqueUri('object1');
    await callee.session.register(prefix, (args, kwargs, details) => details.procedure,
      { match: 'prefix' });
    // The spec's example (com.myapp.myobject1): .myprocedure1, -mysubobject1,
    // .mysubobject1.myprocedure1 and the prefix itself match; myobject2, myobject don't.
    for (const proc of [`${prefix}.proc1`, `${prefix}zz`, `${prefix}.sub1.proc1`, prefix]) {
      assert.equal(await withTimeout(caller.session.call(proc), `RESULT for ${proc}`), proc,
        'INVOCATION.Details.procedure must be the concrete procedure called');
    }
    for (const proc of [`${prefix.slice(0, -1)}2`, prefix.slice(0, -1)]) {
      assert.equal((await expectWampError(caller.session.call(proc), `ERROR for ${proc}`)).error,
        'wamp.error.no_such_procedure');
    }
  });

test('wildcard registration: only calls matching whole components, with details.procedure',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const [callee, caller] = await joinedMany(t, 2);
    const base = uniqueUri('app');
    await callee.session.register(`${base}..proc1`, (args, kwargs, details) => details.procedure,
      { match: 'wildcard' });
    for (const proc of [`${base}.object1.proc1`, `${base}.object2.proc1`]) {
      assert.equal(await withTimeout(caller.session.call(proc), `RESULT for ${proc}`), proc);
    }
    for (const proc of [`${base}.object1.proc1.sub1`, `${base}.object1.proc2`, `${base}x.object1.proc1`]) {
      assert.equal((await expectWampError(caller.session.call(proc), `ERROR for ${proc}`)).error,
        'wamp.error.no_such_procedure');
    }
  });

// The spec's precedence algorithm ("Calls matching multiple registrations"): an
// exact match first, then the longest prefix (most components), then the wildcard
// with the longest portion of components before each wildcard, compared portion by
// portion. Its examples are used as they are, split in two so that no prefix
// registration can take a call meant for the wildcard examples.
async function assertRouting(t, registrations, expected) {
  const [callee, caller] = await joinedMany(t, 2);
  const base = uniqueUri('p');
  for (const [name, uri, match] of registrations) {
    await callee.session.register(`${base}.${uri}`, () => name, { match });
  }
  const got = [];
  for (const [uri] of expected) {
    let answer;
    try {
      answer = await withTimeout(caller.session.call(`${base}.${uri}`), `RESULT for ${uri}`);
    } catch (err) {
      answer = err.error || String(err);
    }
    got.push([uri, answer]);
  }
  assert.deepEqual(got, expected);
}

test('a call matching several registrations goes to the exact one, else the longest prefix',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    await assertRouting(t, [
      ['rpc1', 'a1.b2.c3.d4.e55', 'exact'],
      ['rpc2', 'a1.b2.c3', 'prefix'],
      ['rpc3', 'a1.b2.c3.d4', 'prefix'],
      ['rpc4', 'a1.b2..d4.e5', 'wildcard'],
    ], [
      ['a1.b2.c3.d4.e55', 'rpc1'],
      ['a1.b2.c3.d98.e74', 'rpc2'],
      ['a1.b2.c3.d4.e325', 'rpc3'],
      ['a1.b2.c3.d4.e5', 'rpc3'], // wildcard 4 matches too: a prefix beats a wildcard
      ['a1.b2.c55.d4.e5', 'rpc4'],
      ['a2.b2.c2.d2.e2', 'wamp.error.no_such_procedure'],
    ]);
  });

test('a call matching several wildcard registrations goes to the one with the longest literal portions',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    await assertRouting(t, [
      ['rpc4', 'a1.b2..d4.e5', 'wildcard'],
      ['rpc5', 'a1.b2.c33..e5', 'wildcard'],
      ['rpc6', 'a1.b2..d4.e5..g7', 'wildcard'],
      ['rpc7', 'a1.b2..d4..f6.g7', 'wildcard'],
    ], [
      ['a1.b2.c55.d4.e5', 'rpc4'],
      // 4 and 5 match; 5's first portion (a1.b2.c33) is longer than 4's (a1.b2).
      ['a1.b2.c33.d4.e5', 'rpc5'],
      // 6 and 7 match with equal first portions; 6's second (d4.e5) is longer.
      ['a1.b2.c88.d4.e5.f6.g7', 'rpc6'],
      ['a2.b2.c2.d2.e2', 'wamp.error.no_such_procedure'],
    ]);
  });
