// Batch DOM updates: views mark themselves dirty; they are rendered at most once
// per animation frame (with a timer as a fallback for a hidden tab, where
// frames do not run), however many messages arrived in between.

const dirty = new Set();
let scheduled = false;

function render(view) {
  try {
    view.render();
  } catch (error) {
    console.error('rendering output failed', error);
  }
}

function flush() {
  if (!scheduled) return;
  scheduled = false;
  const views = [...dirty];
  dirty.clear();
  for (const view of views) render(view);
}

// Render *view* now if it waits for a frame: for a state change (a cell's
// prompt saying it is done) that must not show before the output it follows.
export function renderNow(view) {
  if (dirty.delete(view)) render(view);
}

export function invalidate(view) {
  dirty.add(view);
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(flush);
  setTimeout(flush, 250);
}
