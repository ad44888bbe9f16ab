// Interop: basic RPC (the dealer's Basic Profile) between autobahn-js sessions:
// register/call with args and kwargs, application errors carried through, and the
// router's own errors (no such procedure, already exists, invalid URI).
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const {
  autobahn, TEST_TIMEOUT_MS, joined, uniqueUri, withTimeout, expectWampError,
} = require('./helpers');

test('call with args and kwargs reaches the callee and its Result comes back',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const callee = await joined(t);
    const caller = await joined(t);
    const proc = uniqueUri('add');
    const seen = [];
    const reg = await callee.session.register(proc, (args, kwargs, details) => {
      seen.push({ args, kwargs, procedure: details.procedure });
      return new autobahn.Result([args[0] + args[1]], { sum: args[0] + args[1], who: kwargs.who });
    });
    assert.equal(typeof reg.id, 'number');
    const res = await withTimeout(caller.session.call(proc, [2, 3], { who: 'caller' }), 'RESULT');
    assert.deepEqual(res.args, [5]);
    assert.deepEqual(res.kwargs, { sum: 5, who: 'caller' });
    assert.deepEqual(seen, [{ args: [2, 3], kwargs: { who: 'caller' }, procedure: proc }]);
  });

test('a single positional result arrives as a plain value; no result as null',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const client = await joined(t);
    const one = uniqueUri('one');
    const none = uniqueUri('none');
    await client.session.register(one, () => 'just this');
    await client.session.register(none, () => new autobahn.Result());
    assert.equal(await withTimeout(client.session.call(one), 'RESULT'), 'just this');
    assert.equal(await withTimeout(client.session.call(none), 'RESULT'), null);
  });

test('an autobahn.Error thrown by the callee reaches the caller with its URI, args and kwargs',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const callee = await joined(t);
    const caller = await joined(t);
    const proc = uniqueUri('fails');
    await callee.session.register(proc, () => {
      throw new autobahn.Error('com.example.error.foo', [1], { a: 2 });
    });
    const err = await expectWampError(caller.session.call(proc), 'the call ERROR');
    assert.equal(err.error, 'com.example.error.foo');
    assert.deepEqual(err.args, [1]);
    assert.deepEqual(err.kwargs, { a: 2 });
  });

test('calling a procedure nobody registered fails with wamp.error.no_such_procedure',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const caller = await joined(t);
    const err = await expectWampError(caller.session.call(uniqueUri('nobody.home')));
    assert.equal(err.error, 'wamp.error.no_such_procedure');
  });

test('registering a procedure twice fails with wamp.error.procedure_already_exists',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const first = await joined(t);
    const second = await joined(t);
    const proc = uniqueUri('taken');
    await first.session.register(proc, () => 1);
    const other = await expectWampError(second.session.register(proc, () => 2), 'REGISTER ERROR');
    assert.equal(other.error, 'wamp.error.procedure_already_exists');
    const same = await expectWampError(first.session.register(proc, () => 3), 'REGISTER ERROR');
    assert.equal(same.error, 'wamp.error.procedure_already_exists');
    assert.equal(await second.session.call(proc), 1, 'the first registration must still serve');
  });

test('after unregister, or after the callee leaves, the procedure is gone',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const callee = await joined(t);
    const caller = await joined(t);
    const proc = uniqueUri('transient');
    const reg = await callee.session.register(proc, () => 'here');
    assert.equal(await caller.session.call(proc), 'here');
    await withTimeout(reg.unregister(), 'UNREGISTERED');
    assert.equal((await expectWampError(caller.session.call(proc))).error,
      'wamp.error.no_such_procedure');

    const leaver = await joined(t);
    await leaver.session.register(proc, () => 'again');
    assert.equal(await caller.session.call(proc), 'again');
    leaver.connection.close();
    await withTimeout(leaver.closed, 'the callee to leave');
    assert.equal((await expectWampError(caller.session.call(proc))).error,
      'wamp.error.no_such_procedure');
  });

// The Basic Profile: "When a Peer provides an incorrect URI for any URI-based
// attribute of a WAMP message (e.g. realm, topic), then the other Peer MUST respond
// with an ERROR message and give wamp.error.invalid_uri." (Crossbar.io 26.10
// instead fails the whole connection here.)
test('a procedure URI that breaks the URI rules is refused with wamp.error.invalid_uri',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const client = await joined(t);
    const dropped = client.closed.then(({ reason, details }) => {
      throw new Error(`the router closed the session (${reason}, ${JSON.stringify(details)}) ` +
        'instead of answering ERROR wamp.error.invalid_uri');
    });
    const callErr = await expectWampError(
      Promise.race([client.session.call('com.example..empty.component'), dropped]));
    assert.equal(callErr.error, 'wamp.error.invalid_uri');
    const regErr = await expectWampError(
      Promise.race([client.session.register('com.example. space', () => 1), dropped]));
    assert.equal(regErr.error, 'wamp.error.invalid_uri');
  });
