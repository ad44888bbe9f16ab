// The page's one WAMP connection (autobahn-js): ticket, anonymous or (multi-user
// mode, signin.js) WAMP-CRA authentication, automatic reconnection, and calls that return plain values.
// A connection that goes silent and does not answer the heartbeat (src/heartbeat.js: a
// network partition leaves it half-open) is dropped and a new one opened at once.
import autobahn from 'autobahn-browser';
import { HEARTBEAT_PROCEDURE, Heartbeat } from './heartbeat.js';

// why a connection was dropped by the page, as the closed handler's details.message
export const NO_ANSWER = 'the service did not answer the heartbeat: connecting again';

// What a call returns: its single positional result, or its keyword results.
export function resultOf(result) {
  if (result instanceof autobahn.Result) {
    return Object.keys(result.kwargs || {}).length ? result.kwargs : result.args?.[0];
  }
  return result;
}

// An Error with the WAMP error URI and the message the service sent.
export function callError(error) {
  if (error instanceof Error) return error;
  if (error && error.error) {
    const wrapped = new Error(error.args?.[0] || error.error);
    wrapped.uri = error.error;
    wrapped.kwargs = error.kwargs || {};
    return wrapped;
  }
  return new Error(String(error));
}

export class Wamp {
  // handlers: {opened(session), closed(reason, details) -> bool stopRetrying}
  // auth: the connection's own authmethods/authid/onchallenge (multi-user sign-in), else token/anonymous
  // heartbeat: {interval, timeout} in ms (src/heartbeat.js); Connection: autobahn's, or a test's fake
  constructor({ url, realm, token, anonymous, auth: given, handlers, heartbeat = {}, Connection = autobahn.Connection }) {
    this.handlers = handlers;
    this.session = null;
    this.sessionIds = new Set();
    const auth = given || (token
      ? { authmethods: ['ticket'], onchallenge: () => token }
      : { authmethods: anonymous ? ['anonymous'] : ['ticket'], onchallenge: () => '' });
    this.options = {
      url, realm, ...auth,
      max_retries: -1, initial_retry_delay: 0.3, max_retry_delay: 5,
      retry_delay_growth: 1.5, retry_delay_jitter: 0.1,
      use_es6_promises: true,
    };
    this.Connection = Connection;
    this.heartbeat = new Heartbeat({
      ...heartbeat,
      // a WAMP error (a refusal) is the router's answer too; any other failure is not
      probe: () => this.session.call(HEARTBEAT_PROCEDURE).catch((error) => {
        if (!error?.error) throw error;
      }),
      dead: () => this.dropDead(),
    });
    this.connection = this.connect();
  }

  connect() {
    const connection = new this.Connection(this.options);
    connection.onopen = (session, details) => {
      this.session = session;
      this.sessionIds.add(session.id);
      this.heartbeat.start();
      this.handlers.opened(session, details);
    };
    connection.onclose = (reason, details) => {
      this.heartbeat.stop();
      this.session = null;
      return this.handlers.closed(reason, details);
    };
    return connection;
  }

  // No answer to the heartbeat: the connection is half-open. The browser would take
  // long to close it (its closing handshake waits for the dead peer), so it is left
  // to close when it may (a GOODBYE is sent, no retry, nobody listens) and a new
  // connection opens at once, with autobahn-js's own retries while the network is down.
  dropDead() {
    const dead = this.connection;
    dead.onopen = () => {};
    dead.onclose = () => true;
    try { dead.close('wamp.close.normal', NO_ANSWER); } catch { /* closing already */ }
    this.session = null;
    this.connection = this.connect();
    const stop = this.handlers.closed('lost', {
      reason: null, message: NO_ANSWER, will_retry: true, retry_delay: 0, retry_count: 0,
    });
    if (!stop) this.connection.open();
  }

  open() {
    this.connection.open();
  }

  get isOpen() {
    return Boolean(this.session && this.session.isOpen);
  }

  async call(procedure, kwargs = {}, options = {}) {
    if (!this.isOpen) throw new Error('not connected to the service (reconnecting…)');
    try {
      const result = await this.session.call(procedure, [], kwargs, { disclose_me: true, ...options });
      this.heartbeat.heard();
      return resultOf(result);
    } catch (error) {
      if (error?.error) this.heartbeat.heard(); // a WAMP error: the router answered
      throw callError(error);
    }
  }

  async subscribe(topic, handler, options = {}) {
    if (!this.isOpen) throw new Error('not connected');
    return this.session.subscribe(topic, (args, kwargs, details) => {
      this.heartbeat.heard();
      return handler(kwargs || {}, args, details);
    }, options);
  }

  async unsubscribe(subscription) {
    if (!subscription || !subscription.active || !this.isOpen) return;
    try {
      await this.session.unsubscribe(subscription);
    } catch (error) {
      console.debug('unsubscribe failed', error);
    }
  }
}
