// The page uses only autobahn-js's public API: no private members of its
// session (`_send_wamp`, `_call_reqs`…), which change without notice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';

const SOURCES = new URL('../src/', import.meta.url);

test("the page's sources touch no private member of an autobahn-js session", () => {
  const found = [];
  for (const name of readdirSync(SOURCES).filter((n) => n.endsWith('.js'))) {
    const text = readFileSync(new URL(name, SOURCES), 'utf8');
    for (const [match] of text.matchAll(/session\??\.\s*_[A-Za-z]\w*/g)) found.push(`${name}: ${match}`);
  }
  assert.deepEqual(found, []);
});
