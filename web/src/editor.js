// The cell editor: CodeMirror 6 with Python (or Markdown) highlighting,
// indentation and bracket matching, and the notebook's keys:
//
//   Shift+Enter  run, go to the next cell      Ctrl+Enter  run in place
//   Alt+Enter    run, insert a cell below      Ctrl+S      save
//   Tab          complete from the kernel (indent at the start of a line)
//   Shift+Tab    inspect the name at the cursor (dedent at the start of a line)
//   Escape       close the inspection          Up/Down at the edge: previous/next cell
import { EditorView, keymap, drawSelection, highlightSpecialChars, dropCursor, placeholder } from '@codemirror/view';
import { EditorState, Prec, Compartment } from '@codemirror/state';
import { defaultKeymap, history, historyKeymap, indentMore, indentLess } from '@codemirror/commands';
import { indentOnInput, bracketMatching, syntaxHighlighting, defaultHighlightStyle, indentUnit } from '@codemirror/language';
import {
  closeBrackets, closeBracketsKeymap, autocompletion, completionKeymap, startCompletion,
  completionStatus, acceptCompletion, insertCompletionText,
} from '@codemirror/autocomplete';
import { python } from '@codemirror/lang-python';
import { markdown } from '@codemirror/lang-markdown';

function atLineStart(state) {
  const { main } = state.selection;
  if (!main.empty) return true;
  const line = state.doc.lineAt(main.head);
  return /^\s*$/.test(state.sliceDoc(line.from, main.head));
}

const CM_TYPES = {
  function: 'function', builtin_function: 'function', method: 'method', class: 'class',
  module: 'namespace', instance: 'variable', statement: 'variable', keyword: 'keyword',
  param: 'variable', path: 'text', property: 'property',
};

// A CodeMirror completion source asking the kernel; a single match is applied at once.
function kernelCompletions(cell) {
  return async (context) => {
    if (!context.explicit) return null;
    const reply = await cell.complete(context.state.doc.toString(), context.pos);
    if (!reply || reply.status !== 'ok' || !reply.matches?.length) return null;
    if (context.state.doc.toString() !== reply.code) return null;
    const unique = [...new Set(reply.matches)];
    if (unique.length === 1 && context.view) {
      const view = context.view;
      setTimeout(() => {
        if (view.state.doc.toString() === reply.code) {
          view.dispatch(insertCompletionText(view.state, unique[0], reply.from, reply.to));
        }
      });
      return null;
    }
    const types = new Map((reply.metadata?._jupyter_types_experimental || []).map((t) => [t.text, t.type]));
    const options = unique.map((match) => ({
      label: match, type: CM_TYPES[types.get(match)] || 'variable',
    }));
    return { from: reply.from, to: reply.to, options, filter: false };
  };
}

export function createEditor(cell, { doc, language }) {
  const languageSlot = new Compartment();
  const run = (how) => () => {
    cell.notebook.run(cell, how);
    return true;
  };
  const notebookKeys = Prec.highest(keymap.of([
    { key: 'Shift-Enter', run: run('next') },
    { key: 'Mod-Enter', run: run('stay') },
    { key: 'Ctrl-Enter', run: run('stay') },
    { key: 'Alt-Enter', run: run('insert') },
    { key: 'Mod-s', run: () => { cell.notebook.save(); return true; }, preventDefault: true },
    {
      key: 'Tab',
      run: (view) => {
        if (completionStatus(view.state) === 'active') return acceptCompletion(view);
        if (cell.type !== 'code' || atLineStart(view.state)) return indentMore(view);
        return startCompletion(view);
      },
    },
    {
      key: 'Shift-Tab',
      run: (view) => {
        if (cell.type !== 'code' || atLineStart(view.state)) return indentLess(view);
        cell.inspect();
        return true;
      },
    },
    { key: 'Escape', run: () => cell.closeInspection() },
  ]));
  const edgeKeys = keymap.of([
    {
      key: 'ArrowUp',
      run: (view) => view.state.doc.lineAt(view.state.selection.main.head).number === 1
        && cell.notebook.focusNeighbour(cell, -1),
    },
    {
      key: 'ArrowDown',
      run: (view) => view.state.doc.lineAt(view.state.selection.main.head).number === view.state.doc.lines
        && cell.notebook.focusNeighbour(cell, 1),
    },
  ]);
  const state = EditorState.create({
    doc,
    extensions: [
      notebookKeys,
      highlightSpecialChars(),
      history(),
      drawSelection(),
      dropCursor(),
      indentOnInput(),
      bracketMatching(),
      closeBrackets(),
      syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
      indentUnit.of('    '),
      EditorState.tabSize.of(4),
      autocompletion({ override: [kernelCompletions(cell)], activateOnTyping: false, defaultKeymap: true }),
      keymap.of([...closeBracketsKeymap, ...completionKeymap]),
      edgeKeys,
      keymap.of([...defaultKeymap, ...historyKeymap]),
      languageSlot.of(language === 'markdown' ? markdown() : python()),
      placeholder(language === 'markdown' ? 'Markdown text' : ''),
      EditorView.updateListener.of((update) => {
        if (update.docChanged) cell.changed();
        if (update.focusChanged && update.view.hasFocus) cell.notebook.activate(cell);
      }),
      EditorView.contentAttributes.of({ 'aria-label': 'cell input' }),
    ],
  });
  const view = new EditorView({ state });
  view.setLanguage = (name) => view.dispatch({
    effects: languageSlot.reconfigure(name === 'markdown' ? markdown() : python()),
  });
  return view;
}
