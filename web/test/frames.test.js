// The frame batcher (src/frames.js): views render once per frame, and renderNow
// draws a waiting view at once (a finished cell's last output before its prompt).
import { test } from 'node:test';
import assert from 'node:assert/strict';

const frames = [];
globalThis.requestAnimationFrame = (callback) => frames.push(callback);
const { invalidate, renderNow } = await import('../src/frames.js');

function view() {
  return { renders: 0, render() { this.renders += 1; } };
}

function nextFrame() {
  for (const callback of frames.splice(0)) callback();
}

test('a view invalidated many times renders once, at the next frame', () => {
  const item = view();
  for (let i = 0; i < 5; i++) invalidate(item);
  assert.equal(item.renders, 0);
  nextFrame();
  assert.equal(item.renders, 1);
});

test('renderNow draws a waiting view at once, and the frame does not draw it again', () => {
  const waiting = view();
  const other = view();
  invalidate(waiting);
  invalidate(other);
  renderNow(waiting);
  assert.equal(waiting.renders, 1);
  assert.equal(other.renders, 0, 'only the view asked for is drawn early');
  nextFrame();
  assert.equal(waiting.renders, 1);
  assert.equal(other.renders, 1);
});

test('renderNow leaves a view that waits for nothing alone', () => {
  const idle = view();
  renderNow(idle);
  assert.equal(idle.renders, 0);
});
