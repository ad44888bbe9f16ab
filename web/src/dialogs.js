// Modal dialogs: open a notebook from the notebook directory, save under a name.
import { h } from './dom.js';

function modal(title, body, { onClose } = {}) {
  const close = () => {
    overlay.remove();
    onClose?.();
  };
  const dialog = h('div', { class: 'dialog', role: 'dialog', 'aria-modal': 'true', 'aria-label': title },
    h('h2', {}, title), body);
  const overlay = h('div', { class: 'overlay' }, dialog);
  overlay.addEventListener('mousedown', (event) => { if (event.target === overlay) close(); });
  overlay.addEventListener('keydown', (event) => { if (event.key === 'Escape') close(); });
  document.body.append(overlay);
  return { close, dialog };
}

// Browse the notebook directory; resolves with the chosen path (or null).
export function openDialog(list) {
  return new Promise((resolve) => {
    const where = h('div', { class: 'dialog-path' });
    const entries = h('ul', { class: 'dialog-entries' });
    const problem = h('p', { class: 'dialog-problem', hidden: true });
    const cancel = h('button', { type: 'button', onclick: () => done(null) }, 'Cancel');
    const { close } = modal('Open a notebook', [where, entries, problem, h('div', { class: 'dialog-buttons' }, cancel)],
      { onClose: () => resolve(null) });
    const done = (path) => {
      resolve(path);
      close();
    };
    const show = async (path) => {
      try {
        const listing = await list(path);
        where.textContent = `Notebook directory / ${listing.path}`;
        const rows = [];
        if (listing.path) {
          const up = listing.path.split('/').slice(0, -1).join('/');
          rows.push(h('li', {}, h('button', { type: 'button', class: 'entry entry-directory', onclick: () => show(up) }, '..')));
        }
        for (const entry of listing.entries) {
          const open = entry.type === 'directory' ? () => show(entry.path) : () => done(entry.path);
          rows.push(h('li', {}, h('button', { type: 'button', class: `entry entry-${entry.type}`, onclick: open },
            entry.type === 'directory' ? `${entry.name}/` : entry.name)));
        }
        if (!listing.entries.length) rows.push(h('li', { class: 'empty' }, 'No notebooks here.'));
        entries.replaceChildren(...rows);
        entries.querySelector('button')?.focus();
        problem.hidden = true;
      } catch (error) {
        problem.textContent = error.message;
        problem.hidden = false;
      }
    };
    show('');
  });
}

// Ask for a file name; resolves with a path ending in .ipynb (or null).
export function saveAsDialog(current) {
  return new Promise((resolve) => {
    const field = h('input', { type: 'text', class: 'dialog-name', value: current, 'aria-label': 'notebook path', spellcheck: 'false' });
    const save = h('button', { type: 'submit', class: 'primary' }, 'Save');
    const cancel = h('button', { type: 'button', onclick: () => close() }, 'Cancel');
    const form = h('div', { class: 'dialog-form' },
      h('label', {}, 'Path in the notebook directory: ', field),
      h('div', { class: 'dialog-buttons' }, cancel, save));
    const { close } = modal('Save the notebook as', form, { onClose: () => resolve(null) });
    const submit = () => {
      let path = field.value.trim().replace(/^\/+/, '');
      if (!path) return;
      if (!path.endsWith('.ipynb')) path += '.ipynb';
      resolve(path);
      close();
    };
    save.addEventListener('click', submit);
    field.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') {
        event.preventDefault();
        submit();
      }
    });
    field.focus();
    field.select();
  });
}
