// The live classroom in a student's notebook page (multi-user mode, docs/classroom.md):
// an "Ask for help" button, the reason a kernel was culled (and a new kernel on
// the next run), and a notebook the teacher handed out, offered at once.
// The notebook page calls classroomParts(app, details) once it is connected.
import { h } from '../dom.js';

const EVENTS = 'webkernel.class.events';

export async function classroomParts(app, details) {
  if (details?.authrole !== 'student') return;
  if (!app.helpButton) {
    app.helpButton = h('button', { type: 'button', class: 'ask-help', id: 'ask-help', title: 'Ask the teacher for help' }, 'Ask for help');
    app.helpButton.addEventListener('click', () => askForHelp(app));
    app.root.querySelector('.topbar')?.append(app.helpButton);
    wrapExecute(app);
  }
  await app.wamp.subscribe(EVENTS, (event) => classEvent(app, event));
}

async function askForHelp(app) {
  const message = window.prompt('Ask for help (optional message):', '');
  if (message === null) return;
  try {
    await app.wamp.call('webkernel.class.help', { message });
    app.info('Your teacher has been asked for help.');
  } catch (error) {
    app.problem(`Asking for help: ${error.message}`);
  }
}

export function classEvent(app, event) {
  if (event.event === 'culled' && event.kernel_id === app.kernel?.id) {
    app.culled = true;
    app.kernel.setModel({ ...app.kernel.model, execution_state: 'dead', reason: 'shut down for being idle' });
    app.problem(`Your kernel was shut down: ${event.reason}.`);
  } else if (event.event === 'handed_out') {
    const open = h('button', { type: 'button', class: 'open-handout' }, `Open ${event.path}`);
    open.addEventListener('click', () => app.openPath(event.path));
    app.messages.append(h('div', { class: 'message message-info', role: 'status' },
      `${event.by} handed out ${event.path}. `, open));
  }
}

// After a cull (or any end of the kernel this page was using: the page may have
// been away when the cull was announced), the next run starts a new kernel first.
export function wrapExecute(app) {
  const execute = app.notebook.execute.bind(app.notebook);
  app.notebook.execute = async (cell) => {
    const kernel = app.kernel;
    if (kernel && kernel.model?.execution_state === 'dead' && !app.running.some((k) => k.id === kernel.id)) {
      app.culled = false;
      app.info('Your previous kernel is gone: starting a new one.');
      await app.startKernel(app.specs.default);
    }
    execute(cell);
  };
}
