// Shared helpers for the autobahn-js interoperability tests (the *.test.js files
// beside this one): where the router is (from the environment), how to open and
// close a real autobahn-js connection with bounded waits, unique URIs per test,
// and an inbox that collects events/invocations so a test can await them.
//
// Nothing here changes how autobahn-js speaks WAMP. Two things are done to its
// environment: Node 20 gets a global WebSocket from the `ws` package when it has
// none (autobahn-js 26 uses the global one, which Node has by default from 22 on),
// and two warnings autobahn-js prints on every connection close are filtered.
'use strict';

if (typeof globalThis.WebSocket === 'undefined') {
  // A browser WebSocket reports a failed handshake or a reset with an 'error'
  // event nobody has to handle, then 'close'; ws's EventEmitter throws an
  // unhandled 'error' instead, so give it a listener (autobahn-js sets none and
  // learns of the failure from 'close', as in a browser).
  const { WebSocket: WsWebSocket } = require('ws');
  globalThis.WebSocket = class extends WsWebSocket {
    constructor(...args) {
      super(...args);
      this.on('error', () => {});
    }
  };
}

const autobahn = require('autobahn');

// autobahn-js warns on every connection close (and that it will not reconnect);
// every test closes several connections, so drop just those two lines and keep
// every other warning.
const autobahnLog = require('autobahn/lib/log.js');
const autobahnWarn = autobahnLog.warn;
autobahnLog.warn = (first, ...rest) => {
  if (first === 'connection closed' || String(first).startsWith('auto-reconnect disabled')) return;
  autobahnWarn(first, ...rest);
};

const WAMP_URL = process.env.WAMP_URL || 'ws://127.0.0.1:8080/ws';
const WAMP_RAWSOCKET_URL = process.env.WAMP_RAWSOCKET_URL ||
  'tcp://' + new URL(WAMP_URL).host;
const WAMP_REALM = process.env.WAMP_REALM || 'realm1';

// Upper bound for any single wait on the router (join, a reply, an event).
const WAIT_MS = Number(process.env.WAMP_WAIT_MS || 5000);
// Per-test bound handed to node:test.
const TEST_TIMEOUT_MS = 20000;

class ConnectionClosed extends Error {
  constructor(reason, details) {
    super(`connection closed before join: ${reason} ${JSON.stringify(details)}`);
    this.reason = reason;
    this.details = details;
  }
}

// Reject with a message naming what we waited for if `promise` takes longer than `ms`.
function withTimeout(promise, what, ms = WAIT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([Promise.resolve(promise), timeout]).finally(() => clearTimeout(timer));
}

// The autobahn-js transport description for a RawSocket URL `tcp://host:port`.
// (autobahn-js's rawsocket transport takes host/port, not a URL.)
function rawsocketTransport(url = WAMP_RAWSOCKET_URL) {
  const u = new URL(url);
  return { type: 'rawsocket', host: u.hostname, port: Number(u.port) };
}

// autobahn-js 26.3.1 builds its protocol-violation report as
// `Error("failing transport due to protocol violation: ...")` with its own WAMP
// Error constructor called without `new`, so the handler receives `undefined` and
// the text lands on `globalThis.error`. Recover it for the failure message (run
// with AUTOBAHN_DEBUG=1 to see every message on the wire).
function describeInternalError(err, message) {
  if (message) return message;
  if (err && err.message) return err.message;
  const stray = globalThis.error;
  delete globalThis.error;
  return typeof stray === 'string' ? stray : 'autobahn-js internal error (details unavailable)';
}

// Open a connection and resolve once the session has joined (WELCOME), with
// {connection, session, details, closed, internalErrors}. `closed` resolves with
// {reason, details} when the connection closes. Rejects with ConnectionClosed if
// the router refuses the session (ABORT) or the socket closes first.
function connect(overrides = {}) {
  const internalErrors = [];
  const options = {
    url: WAMP_URL,
    realm: WAMP_REALM,
    max_retries: 0,
    retry_if_unreachable: false,
    // autobahn-js reports protocol violations (e.g. a message it did not expect)
    // here, then fails the transport; tests assert this stays empty.
    on_internal_error: (err, message) => internalErrors.push(describeInternalError(err, message)),
    // Exceptions thrown by our own endpoints are expected in some tests.
    on_user_error: () => {},
    ...overrides,
  };
  return withTimeout(new Promise((resolve, reject) => {
    let markClosed;
    const closed = new Promise((r) => { markClosed = r; });
    const connection = new autobahn.Connection(options);
    connection.onopen = (session, details) => {
      resolve({ connection, session, details, closed, internalErrors });
    };
    connection.onclose = (reason, details) => {
      markClosed({ reason, details });
      reject(new ConnectionClosed(reason, details));
      return true; // never auto-reconnect
    };
    connection.open();
  }), `a session to join realm ${options.realm}`);
}

// Close a client's connection (GOODBYE if joined) and wait until it is closed.
async function disconnect(client) {
  if (!client) return;
  try {
    client.connection.close();
  } catch (e) {
    // already closed
  }
  await withTimeout(client.closed, 'the connection to close');
}

// Open a connection for test `t` and close it when the test ends; the test also
// fails if autobahn-js saw a protocol violation on it (it fails the transport then).
async function joined(t, overrides = {}) {
  const client = await connect(overrides);
  t.after(async () => {
    await disconnect(client);
    if (client.internalErrors.length) {
      throw new Error(`autobahn-js reported protocol violations: ${client.internalErrors.join('; ')}`);
    }
  });
  return client;
}

// Open `n` connections with per-index options.
function joinedMany(t, n, optionsFor = () => ({})) {
  return Promise.all(Array.from({ length: n }, (_, i) => joined(t, optionsFor(i))));
}

// A URI unique to this run and test: com.example.it<random>.<suffix>.
function uniqueUri(suffix) {
  const token = Math.random().toString(36).slice(2, 10).replace(/[^0-9a-z]/g, 'x');
  return `com.example.it${token}.${suffix}`;
}

// Collects items (e.g. events) pushed by handlers; `take` awaits the next one.
class Inbox {
  constructor(name = 'item') {
    this.name = name;
    this.items = [];
    this.waiters = [];
  }

  push(item) {
    const waiter = this.waiters.shift();
    if (waiter) {
      waiter(item);
    } else {
      this.items.push(item);
    }
  }

  // An event handler for session.subscribe that records {args, kwargs, details}.
  get handler() {
    return (args, kwargs, details) => this.push({ args, kwargs, details });
  }

  take(ms = WAIT_MS) {
    if (this.items.length) {
      return Promise.resolve(this.items.shift());
    }
    let waiter;
    const next = new Promise((resolve) => {
      waiter = resolve;
      this.waiters.push(resolve);
    });
    return withTimeout(next, `the next ${this.name}`, ms).catch((err) => {
      this.waiters = this.waiters.filter((w) => w !== waiter);
      throw err;
    });
  }

  get length() {
    return this.items.length;
  }
}

// Await a promise that must reject with a WAMP error; return the autobahn.Error.
async function expectWampError(promise, what = 'a WAMP error') {
  let result;
  try {
    result = await withTimeout(promise, what);
  } catch (err) {
    if (err instanceof autobahn.Error) {
      return err;
    }
    throw err;
  }
  throw new Error(`expected ${what}, but the call succeeded with ${JSON.stringify(result)}`);
}

module.exports = {
  autobahn,
  WAMP_URL,
  WAMP_RAWSOCKET_URL,
  WAMP_REALM,
  WAIT_MS,
  TEST_TIMEOUT_MS,
  ConnectionClosed,
  withTimeout,
  rawsocketTransport,
  connect,
  joined,
  joinedMany,
  disconnect,
  uniqueUri,
  Inbox,
  expectWampError,
};
