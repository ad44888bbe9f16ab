// Markdown (cells and text/markdown output) with $…$ and $$…$$ math rendered by
// KaTeX, and LaTeX (text/latex output). Math is cut out before marked sees the
// text (so markdown cannot mangle it) and put back, rendered, after the HTML
// has been sanitized; code spans and fenced code keep their dollars.
import { marked } from 'marked';
import { renderMath } from './math.js';
import { sanitizedFragment } from './sanitize.js';

marked.setOptions({ gfm: true, breaks: false });

const PLACEHOLDER = (n) => `WEBKERNELMATH${n}X`;

// Split markdown into text with placeholders and the math pieces.
export function extractMath(text) {
  const math = [];
  let out = '';
  let i = 0;
  while (i < text.length) {
    const fence = text.startsWith('```', i) || text.startsWith('~~~', i);
    if (fence && (i === 0 || text[i - 1] === '\n')) {
      const marker = text.slice(i, i + 3);
      const end = text.indexOf('\n' + marker, i + 3);
      const stop = end === -1 ? text.length : end + 4;
      out += text.slice(i, stop);
      i = stop;
      continue;
    }
    if (text[i] === '`') {
      let run = 0;
      while (text[i + run] === '`') run++;
      const ticks = '`'.repeat(run);
      const end = text.indexOf(ticks, i + run);
      const stop = end === -1 ? i + run : end + run;
      out += text.slice(i, stop);
      i = stop;
      continue;
    }
    if (text[i] === '\\' && (text[i + 1] === '$' || text[i + 1] === '\\')) {
      out += text.slice(i, i + 2);
      i += 2;
      continue;
    }
    if (text[i] === '$') {
      const display = text[i + 1] === '$';
      const open = display ? 2 : 1;
      const close = display ? '$$' : '$';
      let end = text.indexOf(close, i + open);
      while (end !== -1 && text[end - 1] === '\\') end = text.indexOf(close, end + 1);
      const body = end === -1 ? '' : text.slice(i + open, end);
      const inline = !display && (body.includes('\n\n') || /^\s|\s$/.test(body));
      if (end !== -1 && body.trim() && !inline) {
        out += PLACEHOLDER(math.length);
        math.push({ tex: body, display });
        i = end + close.length;
        continue;
      }
    }
    out += text[i];
    i++;
  }
  return { text: out, math };
}

// A DocumentFragment for a markdown source: sanitized HTML, math rendered.
// Math goes back only into text nodes (never into an attribute), as elements
// KaTeX built from the TeX, which it escapes.
export function markdownToFragment(source) {
  const { text, math } = extractMath(String(source));
  const fragment = sanitizedFragment(marked.parse(text));
  if (!math.length) return fragment;
  const walker = document.createTreeWalker(fragment, NodeFilter.SHOW_TEXT);
  const texts = [];
  while (walker.nextNode()) {
    if (walker.currentNode.nodeValue.includes('WEBKERNELMATH')) texts.push(walker.currentNode);
  }
  for (const node of texts) {
    const parts = node.nodeValue.split(/WEBKERNELMATH(\d+)X/);
    const replacement = document.createDocumentFragment();
    parts.forEach((part, index) => {
      if (index % 2 === 0) {
        if (part) replacement.append(part);
        return;
      }
      const piece = math[Number(part)];
      if (!piece) return;
      const template = document.createElement('template');
      template.innerHTML = renderMath(piece.tex, piece.display);
      replacement.append(template.content);
    });
    node.replaceWith(replacement);
  }
  return fragment;
}

// KaTeX HTML for text/latex output: `$…$`, `$$…$$`, `\[…\]` or bare LaTeX.
export function latexToHTML(source) {
  let tex = String(source).trim();
  let display = true;
  const wrappers = [['$$', '$$'], ['\\[', '\\]'], ['$', '$'], ['\\(', '\\)']];
  for (const [open, close] of wrappers) {
    if (tex.startsWith(open) && tex.endsWith(close) && tex.length >= open.length + close.length) {
      tex = tex.slice(open.length, tex.length - close.length);
      display = open !== '\\(';
      break;
    }
  }
  return renderMath(tex, display);
}
