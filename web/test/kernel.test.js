// The page's output pipeline (src/kernel.js) without a browser: output messages
// are applied in seq order, each once, whatever order and form they arrive in.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KernelClient } from '../src/kernel.js';

function stream(seq, text, extra = {}) {
  return { seq, msg_type: 'stream', content: { name: 'stdout', text }, parent_msg_id: 'p', caller: null, ...extra };
}

// A kernel client on a fake connection whose history holds `history`.
function client(history = []) {
  const applied = [];
  const fetches = [];
  const wamp = {
    isOpen: true,
    session: { id: 1 },
    async call(uri, kwargs) {
      fetches.push(kwargs.since);
      const outputs = history.filter((m) => m.seq > kwargs.since).slice(0, kwargs.limit);
      const last = history.length ? history[history.length - 1].seq : 0;
      return { first_seq: history[0]?.seq ?? 1, last_seq: last, outputs, complete: true };
    },
  };
  const notebook = {
    output: (msg) => applied.push(msg.content?.text ?? msg.msg_type),
    lifecycle() {}, problem() {}, gap() {}, watched: () => null,
  };
  const kernel = new KernelClient(wamp, { id: 'k', execution_state: 'idle' }, notebook);
  return { kernel, applied, fetches };
}

test('messages out of order and repeated are applied once, in seq order', () => {
  const { kernel, applied } = client();
  for (const seq of [2, 1, 3, 2, 1, 4, 3]) kernel.accept(stream(seq, `m${seq}`));
  assert.deepEqual(applied, ['m1', 'm2', 'm3', 'm4']);
  clearTimeout(kernel.gapTimer);
});

test('a gap is filled from the history, nothing doubled', async () => {
  const history = [1, 2, 3, 4, 5].map((seq) => stream(seq, `m${seq}`));
  const { kernel, applied, fetches } = client(history);
  kernel.accept(history[0]);
  kernel.accept(history[3]); // 2 and 3 are missing
  assert.deepEqual(applied, ['m1']);
  await kernel.catchUp();
  kernel.accept(history[4]);
  assert.deepEqual(applied, ['m1', 'm2', 'm3', 'm4', 'm5']);
  assert.deepEqual(fetches, [1]);
});

test('a coalesced stream output stands for its whole range', () => {
  const { kernel, applied } = client();
  kernel.accept(stream(1, 'a'));
  kernel.accept(stream(4, 'bcd', { coalesced: [2, 4] }));
  kernel.accept(stream(3, 'c')); // a late single copy of a merged one
  kernel.accept(stream(5, 'e'));
  assert.deepEqual(applied, ['a', 'bcd', 'e']);
});

test('superseded display updates are skipped, not waited for', () => {
  const { kernel, applied } = client();
  kernel.accept(stream(1, 'a'));
  kernel.accept(stream(3, 'b'));
  kernel.accept({ seq: 4, msg_type: 'update_display_data', content: { text: 'newest' }, superseded: [2] });
  assert.deepEqual(applied, ['a', 'b', 'newest']);
  assert.equal(kernel.pending.size, 0);
});

test('a gap marker fetches what it stands for from the history', async () => {
  const history = [1, 2, 3].map((seq) => stream(seq, `m${seq}`));
  const { kernel, applied } = client(history);
  kernel.accept({ msg_type: 'gap', from_seq: 1, to_seq: 3, seq: 3 });
  await kernel.fetching;
  assert.deepEqual(applied, ['m1', 'm2', 'm3']);
});

test('a fetch lost with its connection does not hold back the next connection\'s', async () => {
  const history = [1, 2, 3].map((seq) => stream(seq, `m${seq}`));
  const { kernel, applied, fetches } = client(history);
  const wamp = kernel.wamp;
  const answer = wamp.call;
  wamp.call = (uri, kwargs) => { fetches.push(kwargs.since); return new Promise(() => {}); }; // the link went silent
  kernel.catchUp();
  assert.deepEqual(fetches, [0]);
  wamp.session = { id: 2 }; // a new connection
  wamp.call = answer;
  await kernel.catchUp();
  assert.deepEqual(fetches, [0, 0]);
  assert.deepEqual(applied, ['m1', 'm2', 'm3']);
  assert.equal(kernel.fetching, null);
});
