// The page's one WAMP connection (autobahn-js): ticket, anonymous or (multi-user
// mode, signin.js) WAMP-CRA authentication, automatic reconnection, and calls that return plain values.
import autobahn from 'autobahn-browser';

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
  constructor({ url, realm, token, anonymous, auth: given, handlers }) {
    this.handlers = handlers;
    this.session = null;
    this.sessionIds = new Set();
    const auth = given || (token
      ? { authmethods: ['ticket'], onchallenge: () => token }
      : { authmethods: anonymous ? ['anonymous'] : ['ticket'], onchallenge: () => '' });
    this.connection = new autobahn.Connection({
      url, realm, ...auth,
      max_retries: -1, initial_retry_delay: 0.3, max_retry_delay: 5,
      retry_delay_growth: 1.5, retry_delay_jitter: 0.1,
      use_es6_promises: true,
    });
    this.connection.onopen = (session, details) => {
      this.session = session;
      this.sessionIds.add(session.id);
      this.handlers.opened(session, details);
    };
    this.connection.onclose = (reason, details) => {
      this.session = null;
      return this.handlers.closed(reason, details);
    };
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
      return resultOf(await this.session.call(procedure, [], kwargs, { disclose_me: true, ...options }));
    } catch (error) {
      throw callError(error);
    }
  }

  async subscribe(topic, handler, options = {}) {
    if (!this.isOpen) throw new Error('not connected');
    return this.session.subscribe(topic, (args, kwargs, details) => handler(kwargs || {}, args, details), options);
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
