// The live classroom in a student's page (src/class/student.js) without a
// browser: a culled kernel is shown dead with the reason, and the next run
// starts a new kernel first; a running kernel is used as it is.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classEvent, wrapExecute } from '../src/class/student.js';

function fakeApp() {
  const app = {
    said: [], started: 0, ran: [],
    kernel: { id: 'k1', model: { id: 'k1', execution_state: 'idle' }, setModel(model) { this.model = model; } },
    running: [{ id: 'k1' }],
    specs: { default: 'python3' },
    problem(text) { app.said.push(text); },
    info(text) { app.said.push(text); },
    async startKernel() {
      app.started += 1;
      app.kernel = { id: 'k2', model: { id: 'k2', execution_state: 'idle' }, setModel() {} };
      app.running = [{ id: 'k2' }];
    },
    notebook: { execute(cell) { app.ran.push([cell, app.kernel.id]); } },
  };
  return app;
}

test('a culled kernel shows the reason and the next run starts a new kernel', async () => {
  const app = fakeApp();
  wrapExecute(app);
  classEvent(app, { event: 'culled', kernel_id: 'k1', reason: 'no cell ran for 600 s (--cull-idle)' });
  app.running = [];
  assert.equal(app.kernel.model.execution_state, 'dead');
  assert.match(app.said[0], /--cull-idle/);
  await app.notebook.execute('cell 1');
  assert.equal(app.started, 1);
  assert.deepEqual(app.ran, [['cell 1', 'k2']]);
});

test('a live kernel is used as it is', async () => {
  const app = fakeApp();
  wrapExecute(app);
  classEvent(app, { event: 'culled', kernel_id: 'another', reason: 'x' });
  await app.notebook.execute('cell 1');
  assert.equal(app.started, 0);
  assert.deepEqual(app.ran, [['cell 1', 'k1']]);
});
