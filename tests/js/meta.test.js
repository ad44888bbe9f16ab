// Interop: the WAMP meta API called from autobahn-js: session meta procedures and
// events (wamp.session.*), and the subscription and registration meta procedures
// (wamp.subscription.*, wamp.registration.*), per the Advanced Profile.
//
// Other test files may run at the same time against the same router, so the
// assertions are about this test's own sessions, topics and procedures only.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const {
  TEST_TIMEOUT_MS, joined, joinedMany, uniqueUri, Inbox, withTimeout, expectWampError,
} = require('./helpers');

function call(client, proc, args) {
  return withTimeout(client.session.call(proc, args), `the result of ${proc}`);
}

// An id that names nothing: WAMP ids are in [1, 2^53]; session ids are random and
// router-scope ids (subscriptions, registrations) may count up from 1, so the top
// of the range is free in practice.
const UNKNOWN_ID = 2 ** 53;

test('wamp.session.count and wamp.session.list include this test\'s sessions',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const [a, b] = await joinedMany(t, 2);
    const count = await call(a, 'wamp.session.count');
    assert.ok(Number.isInteger(count) && count >= 2, `wamp.session.count = ${count}`);
    const list = await call(a, 'wamp.session.list');
    assert.ok(Array.isArray(list), `wamp.session.list = ${JSON.stringify(list)}`);
    assert.ok(list.includes(a.session.id) && list.includes(b.session.id),
      `wamp.session.list ${JSON.stringify(list)} lacks ${a.session.id} or ${b.session.id}`);
    // The optional filter_authroles argument.
    const role = a.details.authrole;
    assert.ok(await call(a, 'wamp.session.count', [[role]]) >= 2);
    assert.equal(await call(a, 'wamp.session.count', [['com_example_nobody']]), 0);
    assert.deepEqual(await call(a, 'wamp.session.list', [['com_example_nobody']]), []);
  });

test('wamp.session.get returns the session\'s id, authid and authrole; unknown ids fail',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const [a, b] = await joinedMany(t, 2);
    for (const [asker, target] of [[a, a], [a, b]]) {
      const info = await call(asker, 'wamp.session.get', [target.session.id]);
      assert.equal(info.session, target.session.id);
      assert.equal(info.authid, target.details.authid);
      assert.equal(info.authrole, target.details.authrole);
      if (target.details.authmethod !== undefined) {
        assert.equal(info.authmethod, target.details.authmethod);
      }
    }
    const err = await expectWampError(a.session.call('wamp.session.get', [UNKNOWN_ID]));
    assert.equal(err.error, 'wamp.error.no_such_session');
  });

test('wamp.session.on_join and on_leave report another session coming and going',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const watcher = await joined(t);
    const joins = new Inbox('on_join event');
    const leaves = new Inbox('on_leave event');
    await watcher.session.subscribe('wamp.session.on_join', joins.handler);
    await watcher.session.subscribe('wamp.session.on_leave', leaves.handler);

    const visitor = await joined(t, { authid: `visitor${process.pid}` });
    const visitorId = visitor.session.id;
    let joined_;
    do { joined_ = await joins.take(); } while (joined_.args[0].session !== visitorId);
    // on_join: one positional argument, the session details.
    const info = joined_.args[0];
    assert.equal(info.authid, visitor.details.authid);
    assert.equal(info.authrole, visitor.details.authrole);

    visitor.connection.close();
    await withTimeout(visitor.closed, 'the visitor to leave');
    let left;
    do { left = await leaves.take(); } while (left.args[0] !== visitorId);
    // on_leave: positional arguments session, authid, authrole.
    assert.deepEqual(left.args, [visitorId, visitor.details.authid, visitor.details.authrole]);
  });

test('wamp.subscription.lookup/match/get/list_subscribers/count_subscribers describe subscriptions',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const [s1, s2, asker] = await joinedMany(t, 3);
    const topic = uniqueUri('meta.topic');
    const sub1 = await s1.session.subscribe(topic, () => {});
    const sub2 = await s2.session.subscribe(topic, () => {});
    assert.equal(sub1.id, sub2.id, 'two sessions on one topic share one subscription');
    const prefixSub = await s1.session.subscribe(topic.replace(/\.topic$/, ''), () => {}, { match: 'prefix' });

    assert.equal(await call(asker, 'wamp.subscription.lookup', [topic]), sub1.id);
    assert.equal(await call(asker, 'wamp.subscription.lookup', [topic, { match: 'exact' }]), sub1.id);
    assert.equal(await call(asker, 'wamp.subscription.lookup',
      [topic.replace(/\.topic$/, ''), { match: 'prefix' }]), prefixSub.id);
    assert.equal(await call(asker, 'wamp.subscription.lookup', [topic, { match: 'prefix' }]), null);
    assert.equal(await call(asker, 'wamp.subscription.lookup', [uniqueUri('nobody')]), null);

    const matched = await call(asker, 'wamp.subscription.match', [topic]);
    assert.deepEqual([...matched].sort(), [sub1.id, prefixSub.id].sort());
    assert.equal(await call(asker, 'wamp.subscription.match', [uniqueUri('nobody')]), null);

    const info = await call(asker, 'wamp.subscription.get', [sub1.id]);
    assert.equal(info.id, sub1.id);
    assert.equal(info.uri, topic);
    assert.equal(info.match, 'exact');
    assert.equal(typeof info.created, 'string');
    assert.ok(!Number.isNaN(Date.parse(info.created)), `created ${info.created} is not ISO 8601`);
    assert.equal((await call(asker, 'wamp.subscription.get', [prefixSub.id])).match, 'prefix');

    const subscribers = await call(asker, 'wamp.subscription.list_subscribers', [sub1.id]);
    assert.deepEqual([...subscribers].sort(), [s1.session.id, s2.session.id].sort());
    assert.equal(await call(asker, 'wamp.subscription.count_subscribers', [sub1.id]), 2);
    await sub2.unsubscribe();
    assert.deepEqual(await call(asker, 'wamp.subscription.list_subscribers', [sub1.id]), [s1.session.id]);
    assert.equal(await call(asker, 'wamp.subscription.count_subscribers', [sub1.id]), 1);

    const lists = await call(asker, 'wamp.subscription.list');
    assert.ok(lists.exact.includes(sub1.id), `wamp.subscription.list ${JSON.stringify(lists)}`);
    assert.ok(lists.prefix.includes(prefixSub.id));
    assert.ok(Array.isArray(lists.wildcard));

    for (const proc of ['wamp.subscription.get', 'wamp.subscription.list_subscribers',
      'wamp.subscription.count_subscribers']) {
      const err = await expectWampError(asker.session.call(proc, [UNKNOWN_ID]), `ERROR from ${proc}`);
      assert.equal(err.error, 'wamp.error.no_such_subscription', proc);
    }
  });

test('wamp.registration.lookup/match/get/list/list_callees/count_callees describe registrations',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const [c1, c2, asker] = await joinedMany(t, 3);
    const proc = uniqueUri('meta.proc');
    const parent = proc.replace(/\.proc$/, '');
    const reg = await c1.session.register(proc, () => 1, { invoke: 'roundrobin' });
    const reg2 = await c2.session.register(proc, () => 2, { invoke: 'roundrobin' });
    assert.equal(reg.id, reg2.id, 'a shared registration has one id');
    const prefixReg = await c1.session.register(parent, () => 3, { match: 'prefix' });

    assert.equal(await call(asker, 'wamp.registration.lookup', [proc]), reg.id);
    assert.equal(await call(asker, 'wamp.registration.lookup', [parent, { match: 'prefix' }]), prefixReg.id);
    assert.equal(await call(asker, 'wamp.registration.lookup', [proc, { match: 'prefix' }]), null);
    assert.equal(await call(asker, 'wamp.registration.lookup', [uniqueUri('nobody')]), null);

    // match: the single best registration (exact beats prefix).
    assert.equal(await call(asker, 'wamp.registration.match', [proc]), reg.id);
    assert.equal(await call(asker, 'wamp.registration.match', [`${parent}.other`]), prefixReg.id);
    assert.equal(await call(asker, 'wamp.registration.match', [uniqueUri('nobody')]), null);

    const info = await call(asker, 'wamp.registration.get', [reg.id]);
    assert.equal(info.id, reg.id);
    assert.equal(info.uri, proc);
    assert.equal(info.match, 'exact');
    assert.equal(info.invoke, 'roundrobin');
    assert.ok(!Number.isNaN(Date.parse(info.created)), `created ${info.created} is not ISO 8601`);
    assert.equal((await call(asker, 'wamp.registration.get', [prefixReg.id])).match, 'prefix');

    const callees = await call(asker, 'wamp.registration.list_callees', [reg.id]);
    assert.deepEqual([...callees].sort(), [c1.session.id, c2.session.id].sort());
    assert.equal(await call(asker, 'wamp.registration.count_callees', [reg.id]), 2);
    await reg2.unregister();
    assert.deepEqual(await call(asker, 'wamp.registration.list_callees', [reg.id]), [c1.session.id]);
    assert.equal(await call(asker, 'wamp.registration.count_callees', [reg.id]), 1);

    const lists = await call(asker, 'wamp.registration.list');
    assert.ok(lists.exact.includes(reg.id), `wamp.registration.list ${JSON.stringify(lists)}`);
    assert.ok(lists.prefix.includes(prefixReg.id));
    assert.ok(Array.isArray(lists.wildcard));

    for (const meta of ['wamp.registration.get', 'wamp.registration.list_callees',
      'wamp.registration.count_callees']) {
      const err = await expectWampError(asker.session.call(meta, [UNKNOWN_ID]), `ERROR from ${meta}`);
      assert.equal(err.error, 'wamp.error.no_such_registration', meta);
    }
  });
