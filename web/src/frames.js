// Batch DOM updates: views mark themselves dirty; they are rendered at most once
// per animation frame (with a timer as a fallback for a hidden tab, where
// frames do not run), however many messages arrived in between.

const dirty = new Set();
let scheduled = false;

function flush() {
  if (!scheduled) return;
  scheduled = false;
  const views = [...dirty];
  dirty.clear();
  for (const view of views) {
    try {
      view.render();
    } catch (error) {
      console.error('rendering output failed', error);
    }
  }
}

export function invalidate(view) {
  dirty.add(view);
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(flush);
  setTimeout(flush, 250);
}
