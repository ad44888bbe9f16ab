// Interop: an unmodified autobahn-js client joins the router over each transport
// and serializer that autobahn-js offers on Node (WebSocket with JSON, MessagePack
// and CBOR; RawSocket with JSON), and payloads survive the router translating
// between serializers.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const {
  autobahn, TEST_TIMEOUT_MS, joined, rawsocketTransport, uniqueUri, Inbox, withTimeout,
} = require('./helpers');

const PAYLOAD = {
  text: 'h\u00e9llo w\u00f6rld \u2603 \u{1F600}',
  int: 42,
  negative: -7,
  largest_safe: Number.MAX_SAFE_INTEGER,
  float: 1.5,
  yes: true,
  nothing: null,
  list: [1, 'two', { three: 3 }],
  nested: { a: { b: [true, false] } },
};

// Register an echo procedure, call it, subscribe and publish to self: one of each
// request/response pair goes through the router on this client's serializer.
async function assertRoundTrip(client) {
  const { session } = client;
  const proc = uniqueUri('echo');
  await withTimeout(session.register(proc, (args, kwargs) => new autobahn.Result(args, kwargs)),
    'REGISTERED');
  const res = await withTimeout(session.call(proc, [PAYLOAD, 'x'], { k: PAYLOAD }), 'RESULT');
  assert.ok(res instanceof autobahn.Result, `expected args+kwargs result, got ${JSON.stringify(res)}`);
  assert.deepEqual(res.args, [PAYLOAD, 'x']);
  assert.deepEqual(res.kwargs, { k: PAYLOAD });

  const topic = uniqueUri('roundtrip');
  const events = new Inbox('event');
  await withTimeout(session.subscribe(topic, events.handler), 'SUBSCRIBED');
  const pub = await withTimeout(
    session.publish(topic, [PAYLOAD], { k: 1 }, { acknowledge: true, exclude_me: false }),
    'PUBLISHED');
  assert.equal(typeof pub.id, 'number');
  const ev = await events.take();
  assert.deepEqual(ev.args, [PAYLOAD]);
  assert.deepEqual(ev.kwargs, { k: 1 });
  assert.equal(ev.details.publication, pub.id, 'EVENT.Publication must equal PUBLISHED.Publication');
}

function assertWelcome(client) {
  const { session, details } = client;
  assert.ok(Number.isSafeInteger(session.id) && session.id > 0, `session id ${session.id}`);
  assert.ok(details.roles && details.roles.broker, 'WELCOME must announce the broker role');
  assert.ok(details.roles.dealer, 'WELCOME must announce the dealer role');
  // Other tests filter and check by these, so the router must say who we are.
  assert.equal(typeof details.authid, 'string', 'WELCOME.Details.authid');
  assert.equal(typeof details.authrole, 'string', 'WELCOME.Details.authrole');
}

test('autobahn-js is the 26.x this suite was written against', () => {
  // Comments here describe autobahn-js 26.x behaviour (its RawSocket transport,
  // its cancel handling, its missing INTERRUPT handler); re-check them on upgrade.
  assert.match(autobahn.version, /^26\./);
});

// Every Advanced Profile feature this suite exercises, by router role.
const FEATURES = {
  broker: ['publisher_identification', 'publisher_exclusion', 'subscriber_blackwhite_listing',
    'pattern_based_subscription', 'session_meta_api', 'subscription_meta_api'],
  dealer: ['caller_identification', 'progressive_call_results', 'call_canceling', 'call_timeout',
    'shared_registration', 'pattern_based_registration', 'session_meta_api',
    'registration_meta_api'],
};

test('WELCOME announces every Advanced Profile feature the other tests exercise',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const { details } = await joined(t);
    const missing = [];
    for (const [role, features] of Object.entries(FEATURES)) {
      const announced = (details.roles[role] && details.roles[role].features) || {};
      missing.push(...features.filter((f) => announced[f] !== true).map((f) => `${role}.${f}`));
    }
    assert.deepEqual(missing, [], `WELCOME.Details.roles does not announce: ${missing.join(', ')}`);
  });

const serializers = {
  json: () => new autobahn.serializer.JSONSerializer(),
  msgpack: () => new autobahn.serializer.MsgpackSerializer(),
  cbor: () => new autobahn.serializer.CBORSerializer(),
};

for (const [name, make] of Object.entries(serializers)) {
  test(`WebSocket with ${name}: joins, negotiates wamp.2.${name}, round-trips RPC and pub/sub`,
    { timeout: TEST_TIMEOUT_MS }, async (t) => {
      const client = await joined(t, { serializers: [make()] });
      assert.equal(client.connection.transport.info.type, 'websocket');
      assert.equal(client.connection.transport.info.protocol, `wamp.2.${name}`);
      assertWelcome(client);
      await assertRoundTrip(client);
    });
}

test('RawSocket with JSON (first byte 0x7F on the shared port): joins and round-trips',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const client = await joined(t, { transports: [rawsocketTransport()] });
    assert.equal(client.connection.transport.info.type, 'rawsocket');
    assertWelcome(client);
    await assertRoundTrip(client);
  });

// autobahn-js's Node RawSocket transport hard-codes JSON (lib/transport/rawsocket.js:
// `SERIALIZERS = {json: 1}`, and the factory always builds the protocol with
// serializer 'json'), so an unmodified autobahn-js cannot speak RawSocket+msgpack.
// The test runs by itself if a future autobahn-js adds it.
const rawsocket = require('autobahn/lib/transport/rawsocket.js');
const rawsocketMsgpack = 'msgpack' in rawsocket.Protocol.prototype.SERIALIZERS;
test('RawSocket with MessagePack: joins and round-trips',
  {
    timeout: TEST_TIMEOUT_MS,
    skip: rawsocketMsgpack ? false
      : `autobahn-js ${autobahn.version} RawSocket transport supports JSON only`,
  }, async (t) => {
    const client = await joined(t, {
      transports: [{ ...rawsocketTransport(), serializers: [serializers.msgpack()] }],
    });
    assertWelcome(client);
    await assertRoundTrip(client);
  });

test('mixed serializers: JSON caller, MessagePack callee, CBOR subscriber, RawSocket publisher',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const caller = await joined(t, { serializers: [serializers.json()] });
    const callee = await joined(t, { serializers: [serializers.msgpack()] });
    const subscriber = await joined(t, { serializers: [serializers.cbor()] });
    const publisher = await joined(t, { transports: [rawsocketTransport()] });

    const proc = uniqueUri('mixed.echo');
    await callee.session.register(proc, (args, kwargs) => new autobahn.Result(args, kwargs));
    const res = await withTimeout(caller.session.call(proc, [PAYLOAD], { k: PAYLOAD }), 'RESULT');
    assert.deepEqual(res.args, [PAYLOAD]);
    assert.deepEqual(res.kwargs, { k: PAYLOAD });

    const topic = uniqueUri('mixed.topic');
    const events = new Inbox('event');
    await subscriber.session.subscribe(topic, events.handler);
    await withTimeout(publisher.session.publish(topic, [PAYLOAD], {}, { acknowledge: true }),
      'PUBLISHED');
    const ev = await events.take();
    assert.deepEqual(ev.args, [PAYLOAD]);
  });

test('binary payloads: bytes from a MessagePack callee reach a CBOR caller unchanged',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const callee = await joined(t, { serializers: [serializers.msgpack()] });
    const caller = await joined(t, { serializers: [serializers.cbor()] });
    const bytes = Buffer.from([0, 1, 2, 127, 128, 254, 255]);
    const proc = uniqueUri('bytes');
    await callee.session.register(proc, (args) => {
      assert.ok(Buffer.isBuffer(args[0]), 'callee must receive binary as binary');
      return Buffer.concat([args[0], bytes]);
    });
    const res = await withTimeout(caller.session.call(proc, [bytes]), 'RESULT');
    assert.ok(res instanceof Uint8Array, `expected bytes, got ${typeof res}: ${JSON.stringify(res)}`);
    assert.deepEqual(Buffer.from(res), Buffer.concat([bytes, bytes]));
  });
