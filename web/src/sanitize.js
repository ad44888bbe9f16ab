// Untrusted HTML (kernel output, markdown from a file) is cleaned with DOMPurify
// before it reaches the page: no script, no event handler attributes, no
// javascript: URLs, no <style> (which could restyle the whole page), no forms.
// The page's Content-Security-Policy (script-src 'self') is the second wall.
import DOMPurify from 'dompurify';

const purifier = DOMPurify(window);

purifier.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A' && node.hasAttribute('href')) {
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer');
  }
});

const OPTIONS = {
  FORBID_TAGS: ['style', 'form', 'input', 'button', 'textarea', 'select', 'iframe', 'frame',
    'object', 'embed', 'link', 'meta', 'base'],
  FORBID_ATTR: ['srcset', 'formaction', 'action'],
  ADD_ATTR: ['target'],
  ALLOW_DATA_ATTR: false,
};

// A DocumentFragment holding the sanitized form of `html`.
export function sanitizedFragment(html) {
  return purifier.sanitize(String(html), { ...OPTIONS, RETURN_DOM_FRAGMENT: true });
}

// The sanitized form of `html`, as a string.
export function sanitizeHTML(html) {
  return purifier.sanitize(String(html), OPTIONS);
}
