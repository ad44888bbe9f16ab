// What CSS untrusted HTML may keep (see sanitize.js and docs/notebook.md,
// "Untrusted content"). Pure functions on plain data, so they run in Node's
// tests as well as in the page.
//
// A style attribute keeps only declarations of properties that change how
// text, tables and boxes look inside the output itself: colours, fonts,
// alignment, borders, spacing, sizes. Positioning (position, inset, top,
// z-index, transform, float…), anything that loads (url(), image-set()…) and
// every other function but colour ones are dropped. The browser's own CSS
// parser reads the attribute first (see declarationsOf), so escapes such as
// `\70 osition` or comments cannot smuggle a property past the list.
//
// Classes the page's own stylesheet uses (`overlay`, `topbar`, `cell`,
// `katex`, `cm-…`) are dropped too: untrusted HTML cannot borrow the page's
// fixed overlays or sticky bars, nor dress up as one of its cells.

const EXACT = new Set([
  'color', 'background-color', 'opacity',
  'font-family', 'font-size', 'font-style', 'font-weight', 'font-variant', 'font-variant-caps',
  'font-variant-ligatures', 'font-variant-numeric', 'font-stretch', 'line-height',
  'letter-spacing', 'word-spacing', 'text-align', 'text-indent', 'text-transform',
  'text-decoration', 'text-decoration-line', 'text-decoration-color', 'text-decoration-style',
  'text-decoration-thickness', 'text-overflow', 'vertical-align',
  'white-space', 'white-space-collapse', 'text-wrap', 'text-wrap-mode', 'text-wrap-style',
  'word-break', 'overflow-wrap', 'word-wrap', 'hyphens', 'direction', 'unicode-bidi',
  'list-style-type', 'list-style-position',
  'border-collapse', 'border-spacing', 'caption-side', 'empty-cells', 'table-layout',
  'width', 'min-width', 'max-width', 'height', 'min-height', 'max-height', 'box-sizing',
  'display', 'overflow-x', 'overflow-y', 'overflow',
]);

const PATTERNS = [
  /^border(-(top|right|bottom|left))?(-(width|style|color))?$/,
  /^border(-(top|bottom)-(left|right))?-radius$/,
  /^(padding|margin)(-(top|right|bottom|left))?$/,
];

// Functions a value may use: colours only.
const FUNCTION = /([a-z-]+)\s*\(/gi;
const COLOUR_FUNCTIONS = new Set(['rgb', 'rgba', 'hsl', 'hsla']);
// Display values that take a box out of the flow or into the top layer: none exists, but
// be explicit about what a box may be.
const DISPLAY = /^(none|block|inline|inline-block|flow-root|list-item|table|inline-table|table-[a-z-]+|flex|inline-flex|grid|inline-grid)$/;

export function allowedProperty(name) {
  const property = String(name).toLowerCase();
  return EXACT.has(property) || PATTERNS.some((pattern) => pattern.test(property));
}

export function allowedValue(name, value) {
  const text = String(value).toLowerCase();
  if (name === 'display' && !DISPLAY.test(text.trim())) return false;
  if (text.includes('\\') || text.includes('/*')) return false;
  for (const [, fn] of text.matchAll(FUNCTION)) {
    if (!COLOUR_FUNCTIONS.has(fn)) return false;
  }
  return true;
}

// The declarations to keep, from [[name, value, priority], …]; `!important` is dropped.
export function allowedDeclarations(declarations) {
  return declarations.filter(([name, value]) => allowedProperty(name) && allowedValue(name, value));
}

// [[name, value, priority], …] of a CSSStyleDeclaration (the browser has parsed it).
export function declarationsOf(style) {
  const out = [];
  for (let i = 0; i < style.length; i++) {
    const name = style[i];
    out.push([name, style.getPropertyValue(name), style.getPropertyPriority(name)]);
  }
  return out;
}

// The style text for the kept declarations ('' if none is kept).
export function styleText(declarations) {
  return allowedDeclarations(declarations).map(([name, value]) => `${name}: ${value}`).join('; ');
}

// The class tokens to keep: those the page's stylesheet does not use.
export function allowedClasses(tokens, pageClasses) {
  return [...tokens].filter((token) => !pageClasses.has(token));
}

const CLASS_IN_SELECTOR = /\.(-?[_a-zA-Z][_a-zA-Z0-9-]*)/g;

// Every class name a list of CSS rules (nested in @media, @supports… too) selects on.
export function classesOfRules(rules, into = new Set()) {
  for (const rule of rules) {
    if (rule.selectorText) {
      for (const [, name] of rule.selectorText.matchAll(CLASS_IN_SELECTOR)) into.add(name);
    }
    if (rule.cssRules) classesOfRules(rule.cssRules, into);
  }
  return into;
}
