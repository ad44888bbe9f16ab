// The page's heartbeat (src/heartbeat.js, src/wamp.js) on fake timers and a fake
// autobahn-js Connection: a quiet connection gets one cheap call per interval, an
// unanswered one is dropped and a new one opened, traffic or an answer keeps it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HEARTBEAT_PROCEDURE, Heartbeat } from '../src/heartbeat.js';
import { NO_ANSWER, Wamp } from '../src/wamp.js';

const INTERVAL = 15000;
const TIMEOUT = 10000;

// Lets promise callbacks run (a settled probe) between timer ticks.
const settle = () => new Promise((resolve) => setImmediate(resolve));

// A session whose calls the test answers (or not): calls[i].answer(value) / .refuse(uri).
function fakeSession(id) {
  const calls = [];
  return {
    id, isOpen: true, calls, handlers: [],
    call(procedure) {
      return new Promise((resolve, reject) => {
        calls.push({ procedure, answer: resolve, refuse: (uri) => reject({ error: uri, args: [] }) });
      });
    },
    async subscribe(topic, handler) {
      this.handlers.push(handler);
      return { active: true };
    },
  };
}

// autobahn.Connection's surface that wamp.js uses; every one made is kept.
function fakeConnections() {
  const made = [];
  class FakeConnection {
    constructor(options) {
      this.options = options;
      this.opened = 0;
      this.closedWith = null;
      made.push(this);
    }

    open() { this.opened += 1; }

    close(reason, message) { this.closedWith = [reason, message]; }

    // the connection's WAMP session joins
    join(id) {
      this.session = fakeSession(id);
      this.onopen(this.session, { authid: 'a', authrole: 'anonymous' });
      return this.session;
    }
  }
  return { made, FakeConnection };
}

function page() {
  const { made, FakeConnection } = fakeConnections();
  const closes = [];
  const wamp = new Wamp({
    url: 'ws://127.0.0.1:8080/ws', realm: 'webkernel', anonymous: true, Connection: FakeConnection,
    heartbeat: { interval: INTERVAL, timeout: TIMEOUT },
    handlers: { opened() {}, closed: (reason, details) => { closes.push([reason, details]); return false; } },
  });
  wamp.open();
  const session = made[0].join(1);
  return { wamp, made, closes, session };
}

test('a quiet connection that does not answer the heartbeat is dropped and a new one opens', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { wamp, made, closes, session } = page();
  t.mock.timers.tick(INTERVAL - 1);
  assert.equal(session.calls.length, 0);
  t.mock.timers.tick(1);
  assert.deepEqual(session.calls.map((c) => c.procedure), [HEARTBEAT_PROCEDURE]);
  t.mock.timers.tick(TIMEOUT - 1);
  assert.equal(made.length, 1);
  t.mock.timers.tick(1);
  // the dead one is closed without retries, the page told, a new connection opened
  assert.deepEqual(made[0].closedWith, ['wamp.close.normal', NO_ANSWER]);
  assert.equal(made[0].onclose('lost', {}), true); // its late close stops its own retries
  assert.equal(made.length, 2);
  assert.equal(made[1].opened, 1);
  assert.equal(closes.length, 1);
  assert.equal(closes[0][0], 'lost');
  assert.equal(closes[0][1].will_retry, true);
  assert.equal(wamp.isOpen, false);
  made[1].join(2);
  assert.equal(wamp.session.id, 2);
});

test('an answer to the heartbeat keeps the connection, and the next comes one interval later', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { made, session } = page();
  t.mock.timers.tick(INTERVAL);
  session.calls[0].answer(1);
  await settle();
  t.mock.timers.tick(TIMEOUT);
  assert.equal(made.length, 1);
  assert.equal(made[0].closedWith, null);
  t.mock.timers.tick(INTERVAL - TIMEOUT);
  assert.equal(session.calls.length, 2);
});

test('a WAMP error is an answer too (a role the router refuses the count)', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { made, session } = page();
  t.mock.timers.tick(INTERVAL);
  session.calls[0].refuse('wamp.error.not_authorized');
  await settle();
  t.mock.timers.tick(TIMEOUT * 3);
  assert.equal(made.length, 1);
  assert.equal(made[0].closedWith, null);
});

test('no heartbeat call while messages arrive', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { wamp, made, session } = page();
  await wamp.subscribe('webkernel.kernels.events', () => {});
  for (let i = 0; i < 10; i += 1) {
    session.handlers[0]([], { event: i }, {}); // an event from the router
    t.mock.timers.tick(INTERVAL);
  }
  assert.equal(session.calls.length, 0);
  assert.equal(made.length, 1);
  t.mock.timers.tick(INTERVAL); // quiet at last: one call
  assert.equal(session.calls.length, 1);
});

test('a closed connection stops the heartbeat', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { made, session } = page();
  made[0].onclose('lost', { will_retry: true });
  t.mock.timers.tick(INTERVAL * 4);
  assert.equal(session.calls.length, 0);
  assert.equal(made.length, 1);
});

test('at most one heartbeat call per interval, however long the page is quiet', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  let probes = 0;
  const heartbeat = new Heartbeat({ probe: async () => { probes += 1; }, dead: () => assert.fail('not dead'),
    interval: INTERVAL, timeout: TIMEOUT });
  heartbeat.start();
  for (let i = 0; i < 40; i += 1) {
    t.mock.timers.tick(INTERVAL);
    await settle();
  }
  assert.equal(probes, 40);
  heartbeat.stop();
});

test('a call that could not be made is no answer: the connection is dropped after the timeout', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  for (const probe of [() => { throw new Error('closed'); }, async () => { throw new Error('closed'); }]) {
    let dead = 0;
    const heartbeat = new Heartbeat({ probe, dead: () => { dead += 1; }, interval: INTERVAL, timeout: TIMEOUT });
    heartbeat.start();
    t.mock.timers.tick(INTERVAL);
    await settle();
    t.mock.timers.tick(TIMEOUT);
    assert.equal(dead, 1);
    t.mock.timers.tick(INTERVAL * 3); // once only: a dead heartbeat stops
    assert.equal(dead, 1);
  }
});

test("the page's own calls answered count as traffic: no heartbeat call meanwhile", async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { wamp, session } = page();
  for (let i = 0; i < 5; i += 1) {
    const result = wamp.call('webkernel.kernels.list');
    session.calls.at(-1).answer([]);
    await result;
    t.mock.timers.tick(INTERVAL);
  }
  assert.deepEqual(session.calls.map((c) => c.procedure), Array(5).fill('webkernel.kernels.list'));
});
