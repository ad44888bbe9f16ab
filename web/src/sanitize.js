// Untrusted HTML (kernel output, markdown, every notebook opened) is cleaned
// with DOMPurify before it reaches the page, with one strict policy for all of
// it (docs/notebook.md, "Untrusted content"):
// * no script, no event handler attributes, no javascript: URLs;
// * no <style>, no forms or controls, frames, embeds, dialogs or popovers;
// * style attributes keep only an allow-list of CSS (css_policy.js): nothing
//   that positions a box (fixed, sticky, absolute…) or loads anything;
// * classes the page's own stylesheet uses are dropped, so an output cannot
//   borrow the page's overlays or sticky bars;
// * every id and name gets the prefix `user-content-` (SANITIZE_NAMED_PROPS),
//   so `<img name="getElementById">` or `<a id="autobahn">` cannot shadow
//   document or window properties the page uses (DOM clobbering).
// Each output and rendered markdown cell is also a CSS containment box
// (style.css), and the page's Content-Security-Policy (script-src 'self') is
// the last wall.
import DOMPurify from 'dompurify';
import { allowedClasses, classesOfRules, declarationsOf, styleText } from './css_policy.js';

const purifier = DOMPurify(window);

let pageClasses = null;

// The class names the page's stylesheets select on (read once, when first needed).
function classesOfPage() {
  if (pageClasses) return pageClasses;
  const found = new Set();
  for (const sheet of document.styleSheets) {
    try {
      classesOfRules(sheet.cssRules, found);
    } catch (error) {
      console.debug('stylesheet not readable', error);
    }
  }
  if (found.size) pageClasses = found; // the stylesheet may not have loaded yet: ask again then
  return found;
}

function restrictStyle(node) {
  if (!node.hasAttribute('style')) return;
  const text = node.style ? styleText(declarationsOf(node.style)) : '';
  if (text) node.setAttribute('style', text);
  else node.removeAttribute('style');
}

function restrictClasses(node) {
  if (!node.hasAttribute('class')) return;
  const kept = allowedClasses(node.classList || [], classesOfPage());
  if (kept.length) node.setAttribute('class', kept.join(' '));
  else node.removeAttribute('class');
}

const NAMED_PREFIX = 'user-content-'; // DOMPurify's, for SANITIZE_NAMED_PROPS

// A link within the output (`#name`) points at the prefixed id and stays in the
// page; every other link opens a new tab without a referrer.
function restrictLink(node) {
  const href = node.getAttribute('href');
  if (href.startsWith('#')) {
    if (!href.startsWith(`#${NAMED_PREFIX}`)) node.setAttribute('href', `#${NAMED_PREFIX}${href.slice(1)}`);
    node.removeAttribute('target');
    return;
  }
  node.setAttribute('target', '_blank');
  node.setAttribute('rel', 'noopener noreferrer');
}

purifier.addHook('afterSanitizeAttributes', (node) => {
  restrictStyle(node);
  restrictClasses(node);
  if (node.tagName === 'A' && node.hasAttribute('href')) restrictLink(node);
});

const OPTIONS = {
  FORBID_TAGS: ['style', 'form', 'input', 'button', 'textarea', 'select', 'iframe', 'frame',
    'object', 'embed', 'link', 'meta', 'base', 'dialog', 'portal', 'fencedframe'],
  FORBID_ATTR: ['srcset', 'formaction', 'action', 'popover', 'popovertarget', 'popovertargetaction',
    'command', 'commandfor', 'anchor'],
  ADD_ATTR: ['target'],
  ALLOW_DATA_ATTR: false,
  SANITIZE_DOM: true,
  SANITIZE_NAMED_PROPS: true,
};

// A DocumentFragment holding the sanitized form of `html`.
export function sanitizedFragment(html) {
  return purifier.sanitize(String(html), { ...OPTIONS, RETURN_DOM_FRAGMENT: true });
}

// The sanitized form of `html`, as a string.
export function sanitizeHTML(html) {
  return purifier.sanitize(String(html), OPTIONS);
}
