// The policy for untrusted CSS and math (src/css_policy.js, src/math.js), without a browser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  allowedClasses, allowedDeclarations, allowedProperty, classesOfRules, styleText,
} from '../src/css_policy.js';
import { renderMath } from '../src/math.js';

test('positioning and anything that loads is dropped from style attributes', () => {
  const kept = allowedDeclarations([
    ['position', 'fixed', ''], ['inset', '0px', ''], ['top', '0px', ''], ['z-index', '9999', ''],
    ['transform', 'translateY(-500px)', ''], ['float', 'left', ''],
    ['background-image', 'url("https://evil.invalid/x.png")', ''],
    ['background-color', 'url(x)', ''], ['width', 'calc(100vw + 10px)', ''],
    ['display', 'contents', ''],
    ['color', 'rgb(255, 0, 0)', ''], ['text-align', 'right', ''], ['border-top-width', '1px', ''],
    ['padding-left', '8px', 'important'], ['font-weight', '700', ''],
  ]);
  assert.deepEqual(kept.map(([name]) => name), ['color', 'text-align', 'border-top-width', 'padding-left', 'font-weight']);
});

test('only an allow-list of properties is kept, whatever their case', () => {
  for (const name of ['position', 'POSITION', 'left', 'inset-inline-start', 'content', 'clip-path',
    'mask-image', 'filter', 'translate', 'scale', 'rotate', 'cursor', 'pointer-events', 'zoom', 'anchor-name']) {
    assert.equal(allowedProperty(name), false, name);
  }
  for (const name of ['color', 'Border-Bottom-Style', 'margin-top', 'max-width', 'white-space-collapse']) {
    assert.equal(allowedProperty(name), true, name);
  }
});

test('the style text keeps what is allowed, without !important', () => {
  assert.equal(styleText([['position', 'fixed', ''], ['color', 'red', 'important']]), 'color: red');
  assert.equal(styleText([['position', 'fixed', '']]), '');
});

test("classes of the page's own stylesheet are dropped from untrusted HTML", () => {
  const rules = [
    { selectorText: '.overlay' },
    { cssRules: [{ selectorText: '.topbar .brand, .cell.active > .x-y' }] },
    { selectorText: 'html, body' },
  ];
  const page = classesOfRules(rules);
  assert.deepEqual([...page].sort(), ['active', 'brand', 'cell', 'overlay', 'topbar', 'x-y']);
  assert.deepEqual(allowedClasses(['overlay', 'dataframe', 'cell', 'my-table'], page), ['dataframe', 'my-table']);
});

test('huge KaTeX sizes are capped and exponential macros stop', () => {
  const rule = renderMath('\\rule{100000em}{100000em}', true);
  const markup = rule.replace(/<annotation[^]*?<\/annotation>/, ''); // the TeX source itself
  const sizes = [...markup.matchAll(/([\d.]+)em/g)].map(([, n]) => Number(n));
  assert.ok(Math.max(...sizes) <= 40, `largest size ${Math.max(...sizes)}em`);
  const bomb = '\\def\\a{x}' + [...'bcdefghijklmnopqrstuvwxy'].map((c, i) => {
    const prev = String.fromCharCode(c.charCodeAt(0) - 1);
    return `\\def\\${c}{\\${prev}\\${prev}}`;
  }).join('') + '\\y';
  const rendered = renderMath(bomb, false);
  assert.ok(rendered.length < 100_000, `${rendered.length} characters`);
  assert.match(rendered, /Too many expansions/);
});
