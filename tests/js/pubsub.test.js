// Interop: publish & subscribe between autobahn-js sessions: acknowledged
// publications, publisher exclusion, subscriber black/whitelisting by session id,
// authid and authrole, prefix and wildcard subscriptions, publisher disclosure.
//
// "Not delivered" is proved with a sentinel: after the publications under test the
// same publisher publishes 'end' to the same topic, and WAMP orders events from one
// publisher on one topic, so whatever a subscriber receives before 'end' is all it
// will ever receive from those publications.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const {
  TEST_TIMEOUT_MS, joined, joinedMany, uniqueUri, Inbox, withTimeout, expectWampError,
} = require('./helpers');

// Publish each payload (first positional argument) with its options, acknowledged,
// then the sentinel 'end'.
async function publishAll(publisher, topic, publications) {
  for (const [payload, options] of publications) {
    await withTimeout(publisher.session.publish(topic, [payload], {}, { acknowledge: true, ...options }),
      `PUBLISHED for ${payload}`);
  }
  await withTimeout(publisher.session.publish(topic, ['end'], {}, { acknowledge: true }),
    'PUBLISHED for the sentinel');
}

// The first positional argument of every event in `inbox` up to the sentinel.
async function received(inbox) {
  const got = [];
  for (;;) {
    const ev = await inbox.take();
    if (ev.args[0] === 'end') return got;
    got.push(ev.args[0]);
  }
}

// Subscribe each client to `topic`; returns their inboxes.
async function subscribeAll(clients, topic, options) {
  return Promise.all(clients.map(async (client, i) => {
    const inbox = new Inbox(`event for subscriber ${i}`);
    await withTimeout(client.session.subscribe(topic, inbox.handler, options), 'SUBSCRIBED');
    return inbox;
  }));
}

test('subscribe, then an acknowledged publish delivers args and kwargs with the publication id',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const [subscriber, publisher] = await joinedMany(t, 2);
    const topic = uniqueUri('basic');
    const [events] = await subscribeAll([subscriber], topic);
    const pub = await withTimeout(
      publisher.session.publish(topic, [1, 'two'], { three: 3 }, { acknowledge: true }), 'PUBLISHED');
    assert.ok(Number.isSafeInteger(pub.id) && pub.id > 0, `publication id ${pub.id}`);
    const ev = await events.take();
    assert.deepEqual(ev.args, [1, 'two']);
    assert.deepEqual(ev.kwargs, { three: 3 });
    assert.equal(ev.details.publication, pub.id);
    assert.equal(ev.details.topic, topic);

    assert.equal(publisher.session.publish(topic, ['unacknowledged']), undefined);
    assert.deepEqual((await events.take()).args, ['unacknowledged']);
  });

test('publisher exclusion: the publisher does not get its own event unless exclude_me is false',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const [other, publisher] = await joinedMany(t, 2);
    const topic = uniqueUri('excludeme');
    const [otherInbox, selfInbox] = await subscribeAll([other, publisher], topic);
    await publishAll(publisher, topic, [['default', {}], ['to me too', { exclude_me: false }]]);
    // The sentinel is itself published with exclude_me defaulting to true.
    const selfEvents = [(await selfInbox.take()).args[0]];
    assert.deepEqual(selfEvents, ['to me too']);
    assert.deepEqual(await received(otherInbox), ['default', 'to me too']);
  });

test('exclude and eligible by session id restrict who receives an event',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const [s1, s2, s3, publisher] = await joinedMany(t, 4);
    const topic = uniqueUri('bysession');
    const [i1, i2, i3] = await subscribeAll([s1, s2, s3], topic);
    const [id1, id2, id3] = [s1, s2, s3].map((c) => c.session.id);
    await publishAll(publisher, topic, [
      ['a', { exclude: [id1] }],
      ['b', { eligible: [id1, id3] }],
      ['c', { eligible: [id1, id2], exclude: [id2] }],
    ]);
    assert.deepEqual(await received(i1), ['b', 'c']);
    assert.deepEqual(await received(i2), ['a']);
    assert.deepEqual(await received(i3), ['a', 'b']);
  });

test('exclude_authid and eligible_authid restrict who receives an event',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const names = ['alice', 'bob', 'carol', 'dave'];
    const clients = await joinedMany(t, 4, (i) => ({ authid: `${names[i]}${process.pid}` }));
    const [a, b, c, publisher] = clients;
    const authids = clients.map((client) => client.details.authid);
    assert.equal(new Set(authids).size, 4,
      `precondition: the router gave the sessions distinct authids (asked for ${names}, got ${authids})`);
    const topic = uniqueUri('byauthid');
    const [ia, ib, ic] = await subscribeAll([a, b, c], topic);
    await publishAll(publisher, topic, [
      ['x', { exclude_authid: [a.details.authid] }],
      ['y', { eligible_authid: [a.details.authid, c.details.authid] }],
    ]);
    assert.deepEqual(await received(ia), ['y']);
    assert.deepEqual(await received(ib), ['x']);
    assert.deepEqual(await received(ic), ['x', 'y']);
  });

test('exclude_authrole and eligible_authrole restrict who receives an event',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const [a, b, publisher] = await joinedMany(t, 3);
    const role = a.details.authrole;
    assert.equal(b.details.authrole, role, 'precondition: both subscribers have the same authrole');
    const topic = uniqueUri('byauthrole');
    const [ia, ib] = await subscribeAll([a, b], topic);
    await publishAll(publisher, topic, [
      ['excluded', { exclude_authrole: [role] }],
      ['other excluded', { exclude_authrole: ['com_example_nobody'] }],
      ['not eligible', { eligible_authrole: ['com_example_nobody'] }],
      ['eligible', { eligible_authrole: ['com_example_nobody', role] }],
    ]);
    assert.deepEqual(await received(ia), ['other excluded', 'eligible']);
    assert.deepEqual(await received(ib), ['other excluded', 'eligible']);
  });

test('prefix subscription: matching topics are delivered with details.topic = the concrete topic',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const [subscriber, publisher] = await joinedMany(t, 2);
    const prefix = uniqueUri('prefix');
    const events = new Inbox('event');
    const sub = await subscriber.session.subscribe(prefix, events.handler, { match: 'prefix' });
    // The spec's example: a prefix subscription to com.myapp.topic.emergency
    // matches .emergency.11, .emergency-low, .emergency.category.severe and
    // .emergency itself, not .emerge (a string prefix, not a component prefix).
    const topics = [`${prefix}.a`, `${prefix}.a.b.c`, prefix, `${prefix}zz`];
    for (const topic of [...topics, prefix.slice(0, -2), `${prefix.slice(0, -6)}other.a`]) {
      await publisher.session.publish(topic, [topic], {}, { acknowledge: true });
    }
    await publisher.session.publish(prefix, ['end'], {}, { acknowledge: true });
    const got = [];
    for (;;) {
      const ev = await events.take();
      if (ev.args[0] === 'end') break;
      got.push(ev);
    }
    assert.deepEqual(got.map((ev) => ev.args[0]), topics);
    // autobahn-js falls back to the subscribed pattern when details.topic is absent.
    assert.deepEqual(got.map((ev) => ev.details.topic), topics, 'EVENT.Details.topic must be the concrete topic');
    assert.equal(sub.topic, prefix);
  });

test('wildcard subscription: only topics matching whole components, with details.topic',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const [subscriber, publisher] = await joinedMany(t, 2);
    const base = uniqueUri('wild');
    const pattern = `${base}..update`;
    const events = new Inbox('event');
    await subscriber.session.subscribe(pattern, events.handler, { match: 'wildcard' });
    const matching = [`${base}.foo.update`, `${base}.bar.update`];
    const notMatching = [`${base}.foo.update.more`, `${base}.foo.upd`, `${base}.update`,
      `${base}x.foo.update`];
    for (const topic of [...notMatching, ...matching]) {
      await publisher.session.publish(topic, [topic], {}, { acknowledge: true });
    }
    await publisher.session.publish(`${base}.end.update`, ['end'], {}, { acknowledge: true });
    const got = [];
    for (;;) {
      const ev = await events.take();
      if (ev.args[0] === 'end') break;
      got.push(ev);
    }
    assert.deepEqual(got.map((ev) => ev.args[0]), matching);
    assert.deepEqual(got.map((ev) => ev.details.topic), matching);
  });

test('an event matching several subscriptions of one session is delivered once per subscription',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const [subscriber, publisher] = await joinedMany(t, 2);
    const base = uniqueUri('multi');
    const topic = `${base}.x.y`;
    const exact = new Inbox('exact event');
    const prefix = new Inbox('prefix event');
    const wildcard = new Inbox('wildcard event');
    await subscriber.session.subscribe(topic, exact.handler);
    await subscriber.session.subscribe(base, prefix.handler, { match: 'prefix' });
    await subscriber.session.subscribe(`${base}..y`, wildcard.handler, { match: 'wildcard' });
    const pub = await publisher.session.publish(topic, ['once'], {}, { acknowledge: true });
    for (const inbox of [exact, prefix, wildcard]) {
      const ev = await inbox.take();
      assert.deepEqual(ev.args, ['once']);
      assert.equal(ev.details.publication, pub.id);
    }
  });

test('after unsubscribe a session gets no more events on that subscription',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const [subscriber, publisher] = await joinedMany(t, 2);
    const topic = uniqueUri('unsub');
    const exact = new Inbox('exact event');
    const viaPrefix = new Inbox('prefix event');
    const sub = await subscriber.session.subscribe(topic, exact.handler);
    await subscriber.session.subscribe(topic, viaPrefix.handler, { match: 'prefix' });
    await withTimeout(sub.unsubscribe(), 'UNSUBSCRIBED');
    await publishAll(publisher, topic, [['after', {}]]);
    assert.deepEqual(await received(viaPrefix), ['after']);
    // An EVENT for the old subscription id would also make autobahn-js report a
    // protocol violation, which fails this test in its after-hook.
    assert.equal(exact.length, 0);
  });

test('publisher disclosure: with disclose_me the event carries details.publisher = the publisher\'s session id',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const [subscriber, publisher] = await joinedMany(t, 2);
    const topic = uniqueUri('disclosed');
    const [events] = await subscribeAll([subscriber], topic);
    await publisher.session.publish(topic, ['hi'], {}, { acknowledge: true, disclose_me: true });
    const ev = await events.take();
    assert.equal(ev.details.publisher, publisher.session.id);
    if (ev.details.publisher_authid !== undefined) {
      assert.equal(ev.details.publisher_authid, publisher.details.authid);
    }
    if (ev.details.publisher_authrole !== undefined) {
      assert.equal(ev.details.publisher_authrole, publisher.details.authrole);
    }
  });

// The Basic Profile: an incorrect URI in a message MUST be answered with ERROR
// wamp.error.invalid_uri. (Crossbar.io 26.10 instead fails the whole connection.)
test('a topic URI that breaks the URI rules is refused with wamp.error.invalid_uri',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const client = await joined(t);
    const dropped = client.closed.then(({ reason }) => {
      throw new Error(`the router closed the session (${reason}) instead of answering ERROR wamp.error.invalid_uri`);
    });
    const pubErr = await expectWampError(Promise.race([
      client.session.publish('com.example..empty', [], {}, { acknowledge: true }), dropped]));
    assert.equal(pubErr.error, 'wamp.error.invalid_uri');
    const subErr = await expectWampError(Promise.race([
      client.session.subscribe('com.example. space', () => {}), dropped]));
    assert.equal(subErr.error, 'wamp.error.invalid_uri');
  });
