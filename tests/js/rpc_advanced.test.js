// Interop: Advanced Profile RPC features between autobahn-js sessions: progressive
// call results, call canceling, call timeouts and caller identification.
//
// What autobahn-js 26.3.1 announces matters here: its callee role announces
// neither `call_canceling` nor `call_timeout`, and it has no handler for INTERRUPT
// (receiving one is a protocol violation to it: it fails the transport). The spec
// therefore requires the router to treat cancel and timeout of a call to an
// autobahn-js callee as mode `skip`: answer the caller at once, send the callee
// nothing, and drop the callee's late answer. These tests assert exactly that.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const {
  autobahn, TEST_TIMEOUT_MS, WAIT_MS, connect, disconnect, joined, uniqueUri, Inbox,
  withTimeout, expectWampError,
} = require('./helpers');

// Register `proc` on `callee` with an endpoint that never answers by itself: each
// invocation pushes a function to `inbox` that answers it (late) when called.
function registerHanging(callee, proc) {
  const invocations = new Inbox('invocation');
  const registered = callee.session.register(proc, (args, kwargs, details) => new Promise(
    (resolve) => invocations.push({ answer: resolve, details })));
  return { invocations, registered };
}

// Both sessions still work after an abandoned invocation: the callee can serve a new
// procedure and `caller` can call it (and the router did not pass on anything that
// would have made autobahn-js fail a transport: the after-hook checks that too).
async function assertStillServing(callee, caller) {
  const ping = uniqueUri('ping');
  await withTimeout(callee.session.register(ping, () => 'pong'), 'REGISTERED after cancel');
  assert.equal(await withTimeout(caller.session.call(ping), 'RESULT after cancel'), 'pong');
  assert.ok(callee.connection.isOpen, 'callee session must still be open');
  assert.deepEqual(callee.internalErrors, [], 'the callee must not have been sent anything it did not ask for');
}

test('progressive call results: the callee\'s progress() results reach the caller in order, then the final result',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const callee = await joined(t);
    const caller = await joined(t);
    const proc = uniqueUri('progress');
    await callee.session.register(proc, (args, kwargs, details) => {
      if (typeof details.progress !== 'function') {
        throw new autobahn.Error('com.example.error.no_progress',
          ['INVOCATION.Details.receive_progress was not set by the router']);
      }
      for (let i = 1; i <= 3; i += 1) {
        details.progress([i], { step: i });
      }
      return new autobahn.Result(['done'], { total: 3 });
    });
    const progress = [];
    const call = caller.session.call(proc, [], {}, { receive_progress: true });
    // autobahn-js (with when.js, its default on Node) reports progressive results
    // through the promise's third then() callback.
    const res = await withTimeout(call.then((r) => r, undefined, (p) => progress.push(p)),
      'the final RESULT');
    assert.deepEqual(progress.map((p) => [p.args, p.kwargs]),
      [[[1], { step: 1 }], [[2], { step: 2 }], [[3], { step: 3 }]]);
    assert.deepEqual(res.args, ['done']);
    assert.deepEqual(res.kwargs, { total: 3 });
  });

test('without receive_progress the callee is not offered progress and the caller gets one result',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const callee = await joined(t);
    const caller = await joined(t);
    const proc = uniqueUri('noprogress');
    await callee.session.register(proc, (args, kwargs, details) => (details.progress ? 'offered' : 'not offered'));
    const progress = [];
    const res = await withTimeout(
      caller.session.call(proc).then((r) => r, undefined, (p) => progress.push(p)), 'RESULT');
    assert.equal(res, 'not offered');
    assert.deepEqual(progress, []);
  });

test('cancel mode "kill" (callee without call_canceling): caller gets wamp.error.canceled, callee gets no INTERRUPT, late result dropped',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const callee = await joined(t);
    const caller = await joined(t);
    const proc = uniqueUri('cancel.kill');
    const { invocations, registered } = registerHanging(callee, proc);
    await registered;
    const call = caller.session.call(proc, ['slow']);
    const invocation = await invocations.take();
    call.cancel({ mode: 'kill' }); // autobahn-js keeps a "kill" call pending for the router's answer
    let err;
    try {
      err = await expectWampError(call, 'the call ERROR after CANCEL (the spec: skip behaviour for ' +
        'a callee without call_canceling, so ERROR at once)');
    } finally {
      invocation.answer('too late'); // a YIELD for an invocation the router has dropped
    }
    assert.equal(err.error, 'wamp.error.canceled');
    await assertStillServing(callee, caller);
  });

// autobahn-js rejects "skip"/"killnowait" calls itself (with error "Cancelled") as it
// sends CANCEL and forgets the request; the router's ERROR for it then arrives for a
// request it no longer knows, which autobahn-js 26.3.1 treats as a protocol violation
// and fails its own transport (an autobahn-js bug; Crossbar.io sees the same). So the
// caller here is a throwaway connection, and the assertions are about the router's
// side: the callee is not interrupted, its late answer is dropped, others go on.
for (const mode of ['skip', 'killnowait']) {
  test(`cancel mode "${mode}": the callee is not interrupted, its late result is dropped, the router goes on`,
    { timeout: TEST_TIMEOUT_MS }, async (t) => {
      const callee = await joined(t);
      const other = await joined(t);
      const caller = await connect();
      t.after(() => disconnect(caller));
      const proc = uniqueUri(`cancel.${mode}`);
      const { invocations, registered } = registerHanging(callee, proc);
      await registered;
      const call = caller.session.call(proc);
      const invocation = await invocations.take();
      call.cancel({ mode });
      const err = await expectWampError(call, 'the call to be rejected after CANCEL');
      assert.equal(err.error, 'Cancelled', 'autobahn-js rejects skip/killnowait calls locally');
      invocation.answer('too late');
      await assertStillServing(callee, other);
    });
}

test('call timeout: the router answers wamp.error.timeout, callee (no call_timeout/call_canceling) gets no INTERRUPT',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const callee = await joined(t);
    const caller = await joined(t);
    const proc = uniqueUri('timeout');
    const { invocations, registered } = registerHanging(callee, proc);
    await registered;
    const started = Date.now();
    const call = caller.session.call(proc, [], {}, { timeout: 100 });
    const invocation = await invocations.take();
    let err;
    try {
      err = await expectWampError(call, 'the call ERROR after the 100 ms call timeout');
    } finally {
      invocation.answer('too late');
    }
    const elapsed = Date.now() - started;
    // The spec (Call Timeouts, dealer-initiated): "The error message that is
    // returned to the Caller MUST use wamp.error.timeout as the reason URI."
    assert.equal(err.error, 'wamp.error.timeout');
    assert.ok(elapsed >= 90, `timed out after ${elapsed} ms, before the 100 ms timeout`);
    assert.ok(elapsed < WAIT_MS, `timed out after ${elapsed} ms`);
    await assertStillServing(callee, caller);
  });

test('a call timeout that does not expire leaves the call alone',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const callee = await joined(t);
    const caller = await joined(t);
    const proc = uniqueUri('timeout.ok');
    await callee.session.register(proc, () => 'in time');
    assert.equal(await withTimeout(caller.session.call(proc, [], {}, { timeout: 3000 }), 'RESULT'),
      'in time');
  });

test('caller identification: with disclose_me the callee sees details.caller = the caller\'s session id',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const callee = await joined(t);
    const caller = await joined(t);
    const proc = uniqueUri('whoami');
    await callee.session.register(proc, (args, kwargs, details) => new autobahn.Result([], {
      caller: details.caller, authid: details.caller_authid, authrole: details.caller_authrole,
    }));
    const res = await withTimeout(caller.session.call(proc, [], {}, { disclose_me: true }), 'RESULT');
    assert.equal(res.kwargs.caller, caller.session.id);
    if (res.kwargs.authid !== undefined) {
      assert.equal(res.kwargs.authid, caller.details.authid);
    }
    if (res.kwargs.authrole !== undefined) {
      assert.equal(res.kwargs.authrole, caller.details.authrole);
    }
  });

test('caller identification: a callee registered with disclose_caller sees the caller without disclose_me',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const callee = await joined(t);
    const caller = await joined(t);
    const proc = uniqueUri('whoami.registered');
    await callee.session.register(proc, (args, kwargs, details) => details.caller,
      { disclose_caller: true });
    assert.equal(await withTimeout(caller.session.call(proc), 'RESULT'), caller.session.id);
  });
