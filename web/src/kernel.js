// One kernel as the page sees it: its topics, its output in `seq` order with
// nothing lost or doubled, and this page's queue of executions.
//
// Output arrives on the kernel's topics (iopub prefix, stdin) and, after a
// reconnect or a gap, from `outputs(since=…)`. Every output message has a
// per-kernel, gap-free `seq`: messages are applied strictly in that order,
// each once; one that arrives early waits for the ones before it, and a gap
// that does not fill itself is fetched from the kernel's history.
//
// Executions are sent one at a time (the next when the last is done), each
// as an ordinary `execute` call whose result the page does not wait for: the
// outputs come from the topics. A dropped connection does not interrupt the
// running code (the router forgets a departed caller's calls without
// interrupting them; autobahn-js leaves that session's promise unsettled).
// The page recognises its own execution by the `execute_input` that its
// session caused; all other executions are someone else's, which the
// notebook shows as they happen.

const GAP_WAIT_MS = 300;
const PAGE = 1000;
const LOST_WAIT_MS = 2500;
const READY_STATES = new Set(['idle', 'busy']);

export class KernelClient {
  // notebook: receives output(msg, execution), lifecycle(state, reason), gap(from, to)
  constructor(wamp, model, notebook) {
    this.wamp = wamp;
    this.id = model.id;
    this.model = model;
    this.notebook = notebook;
    this.applied = 0;
    this.pending = new Map();
    this.subscriptions = [];
    this.gapTimer = null;
    this.fetching = null;
    this.closed = false;
    this.queue = [];
    this.inflight = null;
    this.executions = new Map(); // parent msg_id -> execution
    this.executionState = model.execution_state;
    this.lastStatusAt = Date.now();
    this.lostTimer = null;
  }

  uri(name) {
    return `webkernel.kernel.${this.id}.${name}`;
  }

  get ready() {
    return READY_STATES.has(this.model.execution_state);
  }

  // -- the connection ----------------------------------------------------------------

  // On every (re)opened session: subscribe, then catch up from the history.
  async connected() {
    const accept = (msg) => this.accept(msg);
    this.subscriptions = [
      await this.wamp.subscribe(this.uri('iopub'), accept, { match: 'prefix' }),
      await this.wamp.subscribe(this.uri('stdin'), accept),
    ];
    await this.catchUp();
    this.pump();
  }

  async close() {
    this.closed = true;
    clearTimeout(this.gapTimer);
    clearTimeout(this.lostTimer);
    for (const subscription of this.subscriptions) await this.wamp.unsubscribe(subscription);
    this.subscriptions = [];
  }

  setModel(model) {
    const wasReady = this.ready;
    this.model = { ...this.model, ...model };
    this.notebook.lifecycle(this.model.execution_state, this.model.reason);
    if (!this.ready && ['restarting', 'dead'].includes(this.model.execution_state)) {
      this.dropExecutions(this.model.execution_state === 'dead' ? 'the kernel died' : 'the kernel restarted');
    }
    if (this.ready && !wasReady) this.catchUp().then(() => this.pump());
  }

  // -- output, in seq order ------------------------------------------------------------

  // The seqs an output message stands for: its own, or the range a slow
  // connection's coalesced stream output covers (`coalesced: [first, last]`).
  static range(msg) {
    const merged = msg.coalesced;
    return Array.isArray(merged) && merged.length === 2 ? [merged[0], merged[1]] : [msg.seq, msg.seq];
  }

  accept(msg) {
    if (this.closed || !msg) return;
    if (msg.msg_type === 'gap') {
      // output dropped for a slow connection: it is in the kernel's history
      this.catchUp();
      return;
    }
    if (!Number.isInteger(msg.seq)) return;
    const [from, to] = KernelClient.range(msg);
    if (to <= this.applied || this.pending.has(from)) return;
    if (from <= this.applied) {
      this.catchUp(); // partly applied already: take the rest one by one from the history
      return;
    }
    this.pending.set(from, { msg, to });
    // older updates of the same display that a slow connection dropped: nothing to show
    for (const seq of msg.superseded || []) {
      if (seq > this.applied && !this.pending.has(seq)) this.pending.set(seq, { msg: null, to: seq });
    }
    this.drain();
  }

  drain() {
    while (this.pending.has(this.applied + 1)) {
      const { msg, to } = this.pending.get(this.applied + 1);
      this.pending.delete(this.applied + 1);
      this.applied = Math.max(this.applied, to);
      if (!msg) continue;
      try {
        this.apply(msg);
      } catch (error) {
        console.error('applying output failed', msg, error);
      }
    }
    for (const seq of this.pending.keys()) if (seq <= this.applied) this.pending.delete(seq);
    if (this.pending.size && !this.gapTimer) {
      this.gapTimer = setTimeout(() => {
        this.gapTimer = null;
        if (this.pending.size) this.catchUp();
      }, GAP_WAIT_MS);
    }
  }

  // Fetch everything after the last applied seq from the kernel's history.
  // A fetch made on a session that has since gone never ends (autobahn-js leaves
  // a lost session's calls unanswered): it must not hold back the new session's,
  // or the page would wait for its missing outputs for ever.
  catchUp() {
    const session = this.wamp.session;
    if (this.fetching && this.fetchingOn === session) {
      this.fetchAgain = true; // something new may be missing: look again when this fetch is done
      return this.fetching;
    }
    const fetching = (async () => {
      do {
        this.fetchAgain = false;
        await this.fetchHistory();
      } while (this.fetchAgain && !this.closed && this.wamp.isOpen);
    })().finally(() => { if (this.fetching === fetching) this.fetching = null; });
    this.fetching = fetching;
    this.fetchingOn = session;
    return fetching;
  }

  async fetchHistory() {
    for (;;) {
      if (this.closed || !this.wamp.isOpen) return;
      let page;
      try {
        page = await this.wamp.call(this.uri('outputs'), { since: this.applied, limit: PAGE });
      } catch (error) {
        // not ready yet: the history is fetched again once the kernel is ready
        if (error.uri !== 'webkernel.error.kernel_not_ready') {
          this.notebook.problem(`cannot fetch the kernel's output history: ${error.message}`);
        }
        return;
      }
      if (!page.complete && page.first_seq > this.applied + 1) {
        this.notebook.gap(this.applied + 1, page.first_seq - 1);
        this.applied = page.first_seq - 1;
        for (const seq of [...this.pending.keys()]) if (seq <= this.applied) this.pending.delete(seq);
      }
      const before = this.applied;
      for (const msg of page.outputs || []) this.accept(msg);
      if (!page.outputs?.length || this.applied >= page.last_seq || this.applied === before) return;
    }
  }

  apply(msg) {
    let execution = msg.parent_msg_id ? this.executions.get(msg.parent_msg_id) : null;
    if (!execution && msg.msg_type === 'execute_input') execution = this.recognise(msg);
    if (msg.msg_type === 'status') this.status(msg);
    this.notebook.output(msg, execution);
    if (!execution) return;
    if (msg.msg_type === 'error') execution.error = true;
    if (msg.msg_type === 'status' && msg.content?.execution_state === 'idle') this.finished(execution);
  }

  // The execute_input of a new execution: ours if our session caused it while we wait for one.
  recognise(msg) {
    const mine = this.inflight && !this.inflight.msgId
      && (!msg.caller || msg.caller.session === this.inflight.session);
    const execution = mine ? this.inflight : this.notebook.watched(msg);
    if (!execution) return null;
    execution.msgId = msg.parent_msg_id;
    this.executions.set(execution.msgId, execution);
    return execution;
  }

  status(msg) {
    const state = msg.content?.execution_state;
    this.lastStatusAt = Date.now();
    if (!msg.parent_msg_id && ['restarting', 'dead'].includes(state)) {
      this.setModel({ execution_state: state, reason: msg.content.reason || null });
      return;
    }
    if (READY_STATES.has(state) && this.ready) {
      this.executionState = state;
      this.model.execution_state = state;
      this.notebook.lifecycle(state);
    }
  }

  // -- executions ------------------------------------------------------------------------

  execute(cell, code) {
    const execution = { cell, code, mine: true, msgId: null, session: null, error: false };
    this.queue.push(execution);
    cell.queued();
    this.pump();
    return execution;
  }

  pump() {
    if (this.inflight || !this.queue.length || !this.wamp.isOpen || !this.ready || this.closed) return;
    const execution = this.queue.shift();
    this.inflight = execution;
    execution.session = this.wamp.session.id;
    execution.sentAt = Date.now();
    // A refusal (the kernel not ready, gone…) is an ERROR at once; after that the
    // call's result only repeats what the topics showed, and is not waited for.
    this.wamp.call(this.uri('execute'), {
      code: execution.code, silent: false, store_history: true, allow_stdin: true, stop_on_error: false,
    }).catch((error) => {
      if (this.inflight === execution && !execution.msgId) this.lost(execution, error.message);
    });
    this.watchForLoss(execution);
  }

  // A request the kernel never started (refused while the call was let go, or
  // aborted): the kernel is idle and no execute_input came.
  watchForLoss(execution) {
    clearTimeout(this.lostTimer);
    this.lostTimer = setTimeout(() => {
      if (this.inflight !== execution || execution.msgId) return;
      const quiet = Date.now() - this.lastStatusAt >= LOST_WAIT_MS;
      if (this.executionState === 'idle' && quiet && this.wamp.isOpen && !this.fetching) {
        this.lost(execution, 'the kernel did not run it');
      } else {
        this.watchForLoss(execution);
      }
    }, LOST_WAIT_MS);
  }

  lost(execution, reason) {
    execution.cell.notRun(`Not run: ${reason}.`);
    this.inflight = null;
    this.pump();
  }

  finished(execution) {
    execution.cell.finished(execution.error);
    if (!execution.mine || this.inflight !== execution) return;
    this.inflight = null;
    if (execution.error) this.dropQueue('not run: an earlier cell raised an error');
    this.pump();
  }

  dropQueue(reason) {
    for (const execution of this.queue.splice(0)) execution.cell.notRun(reason.charAt(0).toUpperCase() + reason.slice(1) + '.');
  }

  dropExecutions(reason) {
    if (this.inflight) {
      this.inflight.cell.notRun(`Stopped: ${reason}.`);
      this.inflight = null;
    }
    for (const execution of this.executions.values()) {
      if (execution.cell.state === 'running' || execution.cell.state === 'queued') execution.cell.notRun(`Stopped: ${reason}.`);
    }
    this.dropQueue(`not run: ${reason}`);
  }

  // Interrupt: the kernel's; and whatever of ours is still waiting is dropped.
  async interrupt() {
    this.dropQueue('not run: interrupted');
    await this.wamp.call(this.uri('interrupt'));
  }

  async restart() {
    this.dropExecutions('the kernel restarted');
    this.setModel({ execution_state: 'restarting' });
    const model = await this.wamp.call(this.uri('restart'));
    this.setModel(model);
  }

  request(name, kwargs) {
    return this.wamp.call(this.uri(name), kwargs);
  }
}
