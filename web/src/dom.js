// A tiny DOM builder: elements from tag, attributes and children, never from
// HTML strings (so no text a kernel or a file supplies is parsed as markup here).

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// Join the list-of-lines form of nbformat strings.
export function joinText(value) {
  if (Array.isArray(value)) return value.join('');
  return value == null ? '' : String(value);
}

// Jupyter positions count Unicode code points; JavaScript strings count UTF-16 units.
export function toCodePoints(text, index) {
  return [...text.slice(0, index)].length;
}

export function fromCodePoints(text, points) {
  let index = 0;
  for (let n = 0; n < points && index < text.length; n++) {
    index += text.codePointAt(index) > 0xffff ? 2 : 1;
  }
  return index;
}

export function newId() {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
