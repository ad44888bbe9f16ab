// Rich output: one renderer per MIME type, the richest type a bundle offers
// wins (as in Jupyter). Nothing here runs code from the output: HTML is
// sanitized, SVG is shown as an image (an <img> runs no script), images are
// data: URLs, JSON and text are text.
import { h, joinText } from './dom.js';
import { sanitizedFragment } from './sanitize.js';
import { latexToHTML, markdownToFragment } from './markdown.js';
import { TextBlock } from './text.js';

const BASE64 = /^[A-Za-z0-9+/=\s]*$/;

function image(mime, data, metadata) {
  const b64 = joinText(data);
  if (!BASE64.test(b64)) return h('pre', { class: 'output-error' }, `${mime} output is not base64`);
  const img = h('img', { class: 'output-image', alt: `${mime} output` });
  img.src = `data:${mime};base64,${b64.replace(/\s/g, '')}`;
  sizeFrom(img, metadata);
  return img;
}

function sizeFrom(img, metadata) {
  const size = metadata || {};
  if (Number.isFinite(size.width)) img.width = size.width;
  if (Number.isFinite(size.height)) img.height = size.height;
}

function svg(data, metadata) {
  const img = h('img', { class: 'output-image output-svg', alt: 'image/svg+xml output' });
  img.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(joinText(data))}`;
  sizeFrom(img, metadata);
  return img;
}

function html(data) {
  const div = h('div', { class: 'output-html' });
  div.append(sanitizedFragment(joinText(data)));
  return div;
}

function markdown(data) {
  const div = h('div', { class: 'output-markdown rendered-markdown' });
  div.append(markdownToFragment(joinText(data)));
  return div;
}

function latex(data) {
  const div = h('div', { class: 'output-latex' });
  const template = document.createElement('template');
  template.innerHTML = latexToHTML(joinText(data)); // KaTeX output: built by KaTeX, TeX escaped
  div.append(template.content);
  return div;
}

function json(data) {
  const text = typeof data === 'string' ? data : JSON.stringify(data, null, 2);
  return h('pre', { class: 'output-json' }, text);
}

function plain(data) {
  const block = new TextBlock('output-text');
  block.append(joinText(data));
  block.render();
  return block.el;
}

export const RENDERERS = [
  ['text/html', html],
  ['text/markdown', markdown],
  ['text/latex', latex],
  ['image/svg+xml', svg],
  ['image/png', (d, m) => image('image/png', d, m)],
  ['image/jpeg', (d, m) => image('image/jpeg', d, m)],
  ['image/gif', (d, m) => image('image/gif', d, m)],
  ['application/json', json],
  ['text/plain', plain],
];

// The element showing a mime bundle (data, metadata), or null if no type is known.
export function renderBundle(data, metadata = {}) {
  for (const [mime, render] of RENDERERS) {
    if (data && data[mime] !== undefined) {
      const el = render(data[mime], metadata[mime] || {});
      el.dataset.mime = mime;
      return el;
    }
  }
  const types = Object.keys(data || {}).join(', ') || 'nothing';
  return h('pre', { class: 'output-unsupported' }, `(output of type ${types}: not shown)`);
}
