/**
 * Ids and claim tokens take their randomness from /dev/urandom (src/format/random.ts), not
 * node:crypto, whose load a short CLI call would pay; Web Crypto fills in without it.
 */
import assert from 'node:assert/strict';
import type * as fs from 'node:fs';
import { describe, it } from 'node:test';
import { newMessageId } from '../src/format/names.js';
import { randomBytes } from '../src/format/random.js';
import { errno, patchFs } from './helpers.js';

describe('random bytes', () => {
  it('make version-4 UUIDs without dashes, as uuid4().hex, all different', () => {
    const ids = Array.from({ length: 2000 }, newMessageId);
    for (const id of ids) assert.match(id, /^[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}$/);
    assert.equal(new Set(ids).size, ids.length);
  });

  it('come from Web Crypto where /dev/urandom cannot be opened', () => {
    let asked = 0;
    const restore = patchFs('openSync', (original) => ((path: fs.PathLike, ...rest: unknown[]) => {
      if (String(path) === '/dev/urandom') {
        asked++;
        throw errno('EACCES', String(path));
      }
      return (original as (...a: unknown[]) => number)(path, ...rest);
    }) as typeof fs.openSync);
    let a: Buffer;
    let b: Buffer;
    try {
      a = randomBytes(5000); // more than the pool holds: a refill
      b = randomBytes(5000);
    } finally {
      restore();
    }
    assert.equal(asked, 2);
    assert.notDeepEqual(a, b);
    assert.equal(new Set(a).size, 256, 'every byte value among 5000 random bytes');
  });
});
