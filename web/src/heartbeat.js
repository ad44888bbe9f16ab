// The page notices a half-open connection to the router (a network partition:
// no FIN, no RST, the WebSocket stays "open" and nothing comes). Browsers expose
// no WebSocket ping, so when the page has heard nothing for an interval it makes
// one cheap WAMP call; if no answer comes within the timeout the connection is
// dead (src/wamp.js then drops it and connects again).
//
// Any answer counts, a result or a WAMP error alike: either way the router is
// there. The call is wamp.session.count, which the router answers itself (no
// kernel host, no disk): webkernel's router gives the count to anonymous, token
// and single-user sessions and to teachers, and refuses students and observers
// (wamp.error.not_authorized, an answer too); Crossbar.io refuses it to roles
// without a wamp.* permission, also an answer. See docs/notebook.md.

export const HEARTBEAT_PROCEDURE = 'wamp.session.count';
// ms of quiet before a heartbeat call, and ms to wait for its answer
export const HEARTBEAT_INTERVAL = 15000;
export const HEARTBEAT_TIMEOUT = 10000;

// probe(): a promise that resolves when the router answers (it fails, or throws,
// if the call could not be made: that is no answer); dead(): called once if no
// answer came within `timeout` ms. heard() marks traffic from the router.
export class Heartbeat {
  constructor({ probe, dead, interval = HEARTBEAT_INTERVAL, timeout = HEARTBEAT_TIMEOUT }) {
    this.probe = probe;
    this.dead = dead;
    this.interval = interval;
    this.timeout = timeout;
    this.timer = null;
    this.running = false;
    this.quiet = true; // nothing heard since the timer was set
    this.probes = 0;   // heartbeat calls made (for tests and the curious)
  }

  // Start watching a freshly opened connection.
  start() {
    this.stop();
    this.running = true;
    this.wait();
  }

  // Stop for good (the connection closed, or was dropped).
  stop() {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = null;
  }

  // A message came from the router: the link is alive. Cheap: a flag, no timer.
  heard() {
    this.quiet = false;
  }

  wait() {
    this.quiet = true;
    this.timer = setTimeout(() => this.check(), this.interval);
  }

  check() {
    if (!this.running) return;
    if (!this.quiet) {
      this.wait();
      return;
    }
    this.ask();
  }

  ask() {
    this.probes += 1;
    let answered = false;
    const timer = setTimeout(() => {
      if (answered || !this.running) return;
      this.stop();
      this.dead();
    }, this.timeout);
    this.timer = timer;
    const answer = () => {
      answered = true;
      if (this.timer !== timer || !this.running) return;
      clearTimeout(timer);
      this.wait();
    };
    try {
      Promise.resolve(this.probe()).then(answer, () => {}); // no answer: the timer decides
    } catch { /* the call could not be made: no answer either */ }
  }
}
