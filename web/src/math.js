// TeX to HTML with KaTeX, for markdown math and text/latex output.
// Math is untrusted like everything else in a notebook: no \href,
// \htmlStyle… (trust: false); sizes a user writes (\rule{1e6em}{1e6em},
// \kern, \hspace) are capped at maxSize ems; at most maxExpand macro
// expansions, so \def\a{\b\b}\def\b{\c\c}… cannot grow exponentially.
import katex from 'katex';

export const KATEX_OPTIONS = { throwOnError: false, trust: false, output: 'htmlAndMathml', maxSize: 20, maxExpand: 500 };

export function renderMath(tex, display) {
  return katex.renderToString(tex, { ...KATEX_OPTIONS, displayMode: display });
}
