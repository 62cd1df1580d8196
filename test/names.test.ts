import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isDdmqError } from '../src/format/errors.js';
import {
  checkMessageFileName,
  checkQueueName,
  compareReady,
  inFlightFileName,
  nameOfKey,
  readyKeyOf,
  newClaimToken,
  newMessageId,
  parseInFlightName,
  parseReadyName,
  readyFileName,
  readyNameOf,
  readySortKey,
} from '../src/format/names.js';
import { QueueNumbers } from '../src/format/queue-number.js';
import { ReadyListing, shortKeyOf } from '../src/format/listing.js';

const hexId = fc.stringMatching(/^[0-9a-f]{32}$/);
const digits = (min: number, max: number) => fc.stringMatching(new RegExp(`^[0-9]{${min},${max}}$`));

/** Exact value of a queue number as the SPEC reads it: first 10 digits seconds, rest fraction. */
function qnumValue(q: string, scale = 40): bigint {
  const sec = BigInt(q.slice(0, 10) || '0');
  const frac = q.slice(10).padEnd(scale, '0');
  return sec * 10n ** BigInt(scale) + BigInt(frac || '0');
}

describe('queue names', () => {
  it('accepts exactly [A-Za-z0-9_-]{1,200}', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 210, unit: 'binary' }), (s) => {
        const ok = /^[A-Za-z0-9_-]{1,200}$/.test(s);
        try {
          checkQueueName(s);
          return ok;
        } catch (err) {
          return !ok && isDdmqError(err, 'INVALID_NAME');
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses traversal, separators, NUL, look-alikes and non-strings with INVALID_NAME', () => {
    for (const bad of ['', '.', '..', '../x', 'a/b', '/abs', 'a\\b', 'a\0b', 'a b', 'ｑueue', 'qu\u0435ue', 'x'.repeat(201), 42, null, undefined]) {
      assert.throws(() => checkQueueName(bad), (e) => isDdmqError(e, 'INVALID_NAME'), String(bad));
    }
    assert.equal(checkQueueName('x'.repeat(200)), 'x'.repeat(200));
  });
});

describe('message file names', () => {
  it('ready names round-trip through encode and parse', () => {
    fc.assert(
      fc.property(fc.nat(), digits(1, 25), hexId, (prio, qnum, id) => {
        const name = readyFileName(prio, qnum, id);
        assert.deepEqual(parseReadyName(name), { name, priority: String(prio), queueNumber: qnum, id });
        assert.equal(parseInFlightName(name), null);
      }),
    );
  });

  it('in-flight names round-trip, keep the token apart from the id, and lead back to the ready name', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 40 }), fc.nat(), digits(1, 25), hexId, (expiry, prio, qnum, id) => {
        const token = newClaimToken();
        const name = inFlightFileName(expiry, readyFileName(prio, qnum, id), token);
        const parsed = parseInFlightName(name)!;
        assert.equal(parsed.expiry, expiry);
        assert.equal(parsed.id, id);
        assert.equal(parsed.token, token);
        assert.equal(readyNameOf(parsed), readyFileName(prio, qnum, id));
        // The original's in-flight pattern accepts our names.
        assert.match(name, /^\d+\.\d+\.\d+\.ddmq[a-zA-Z0-9]+$/);
      }),
    );
  });

  it('reads in-flight names of the original tool (no token, any id)', () => {
    const p = parseInFlightName('1538638378.999.1.ddmq39eb64e1913143aa8d28d9158f089006')!;
    assert.deepEqual([p.expiry, p.priority, p.queueNumber, p.id, p.token], [1538638378, '999', '1', '39eb64e1913143aa8d28d9158f089006', '']);
    assert.equal(parseInFlightName('1.2.3.ddmqShortId')!.id, 'ShortId');
  });

  it('new ids are 32 lowercase hex digits and tokens differ', () => {
    assert.match(newMessageId(), /^[0-9a-f]{32}$/);
    const tokens = new Set(Array.from({ length: 1000 }, newClaimToken));
    assert.equal(tokens.size, 1000);
  });

  it('user-given names: only bare message names pass', () => {
    const ready = '999.17959424557270570000.ddmqc4b38e014f7c40b0a679ff6eb8ee43ce';
    const inflight = `1795943056.${ready}abc123`;
    assert.equal(checkMessageFileName(ready, ['ready', 'in-flight']), 'ready');
    assert.equal(checkMessageFileName(inflight, ['in-flight']), 'in-flight');
    for (const bad of [`../${ready}`, `${ready}/..`, `/tmp/${ready}`, `work/${inflight}`, '..', '', `${ready}\0`, 'a'.repeat(300), ready.replace('.ddmq', '.dd'), 5]) {
      assert.throws(() => checkMessageFileName(bad, ['ready', 'in-flight']), (e) => isDdmqError(e, 'INVALID_NAME'));
    }
    assert.throws(() => checkMessageFileName(ready, ['in-flight']), (e) => isDdmqError(e, 'INVALID_NAME'));
  });
});

describe('serving order', () => {
  it('keys are made for exactly the names the ready pattern accepts, and end with the name', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 60 }), fc.stringMatching(/^[0-9]{1,5}\.[0-9]{0,22}\.?d?dmq[A-Za-z0-9.]{0,40}$/)), (name) => {
        const key = readyKeyOf(name);
        assert.equal(key !== null, parseReadyName(name) !== null, name);
        if (key !== null) assert.equal(nameOfKey(key), name);
      }),
      { numRuns: 3000 },
    );
  });

  const entry = (prio: bigint | number, qnum: string, id: string) => parseReadyName(readyFileName(String(prio), qnum, id))!;

  it('is numeric by priority: 1000 after 999, 10 after 9, leading zeros ignored', () => {
    const names = [entry(1000, '1', 'a'), entry(999, '1', 'a'), entry(10, '1', 'a'), entry(9, '1', 'a'), entry(0, '1', 'a')];
    assert.deepEqual(names.sort(compareReady).map((n) => n.priority), ['0', '9', '10', '999', '1000']);
    const padded = parseReadyName('007.5.ddmqa')!;
    assert.ok(compareReady(entry(6, '5', 'a'), padded) < 0 && compareReady(padded, entry(8, '5', 'a')) < 0);
  });

  it('equals the order of (priority, queue number read as seconds.fraction, file name) for any digits', () => {
    const name = fc.record({
      prio: fc.bigInt({ min: 0n, max: 10n ** 30n }),
      qnum: digits(1, 24),
      id: fc.constantFrom('a', 'b'),
    });
    fc.assert(
      fc.property(fc.array(name, { minLength: 2, maxLength: 30 }), (items) => {
        const byKey = items.map((i) => entry(i.prio, i.qnum, i.id)).sort(compareReady);
        const expected = [...items]
          .sort((a, b) => {
            if (a.prio !== b.prio) return a.prio < b.prio ? -1 : 1;
            const va = qnumValue(a.qnum);
            const vb = qnumValue(b.qnum);
            if (va !== vb) return va < vb ? -1 : 1;
            const na = readyFileName(String(a.prio), a.qnum, a.id);
            const nb = readyFileName(String(b.prio), b.qnum, b.id);
            return na < nb ? -1 : na > nb ? 1 : 0;
          })
          .map((i) => [String(i.prio), qnumValue(i.qnum), i.id]);
        assert.deepEqual(
          byKey.map((n) => [n.priority.replace(/^0+(?=\d)/, ''), qnumValue(n.queueNumber), n.id]),
          expected,
        );
      }),
      { numRuns: 500 },
    );
  });

  it("orders the original's variable-length numbers (time.time() without its dot) by time, mixed with ours", () => {
    // Python's str(time.time()) drops trailing zeros: 1538638378.25 -> "153863837825", 1538638378.0 -> "15386383780".
    const pythonQnum = (micros: number) => {
      const s = (micros / 1e6).toString();
      return (s.includes('.') ? s : `${s}.0`).replace('.', '');
    };
    const ourQnum = (micros: number, seq: number) => String(micros).padStart(16, '0') + String(seq).padStart(4, '0');
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 1_500_000_000_000_000, max: 2_000_000_000_000_000 }), fc.boolean()), { minLength: 2, maxLength: 40 }),
        (times) => {
          const items = times.map(([us, python], i) => ({ us, i, qnum: python ? pythonQnum(us) : ourQnum(us, 0) }));
          const sorted = items.map((it) => ({ it, e: entry(999, it.qnum, String(it.i)) })).sort((a, b) => compareReady(a.e, b.e));
          for (let k = 1; k < sorted.length; k++) assert.ok(sorted[k - 1]!.it.us <= sorted[k]!.it.us, JSON.stringify(sorted.map((s) => s.it)));
        },
      ),
      { numRuns: 500 },
    );
    assert.ok(readySortKey(entry(999, '153863837825', 'a')) < readySortKey(entry(999, '15386383783', 'a'))); // .25 < .3
    assert.ok(readySortKey(entry(999, '15386383789', 'a')) < readySortKey(entry(999, '15386383790', 'a'))); // .9 < 1539...0
  });
});

describe('sorted listings', () => {
  const ourName = fc.tuple(fc.integer({ min: 0, max: 999_999_999 }), fc.stringMatching(/^[0-9]{20}$/), hexId).map(([p, q, id]) => readyFileName(p, q, id));
  const anyName = fc.oneof(ourName, fc.tuple(fc.stringMatching(/^[0-9]{1,12}$/), digits(1, 24), fc.stringMatching(/^[A-Za-z0-9]{1,8}$/)).map(([p, q, id]) => readyFileName(p, q, id)));
  const drain = (l: ReadyListing) => {
    const out: string[] = [];
    for (let n = l.next(); n !== undefined; n = l.next()) out.push(n);
    return out;
  };
  const byCompare = (names: string[]) => [...new Set(names)].sort((a, b) => compareReady(parseReadyName(a)!, parseReadyName(b)!));

  it("hand out the ready names in serving order, with ddmq's short keys or the general ones", () => {
    fc.assert(
      fc.property(fc.array(ourName, { maxLength: 60 }), (names) => {
        assert.deepEqual(drain(ReadyListing.of([...new Set(names)])), byCompare(names));
      }),
    );
    fc.assert(
      fc.property(fc.array(anyName, { maxLength: 60 }), fc.array(fc.string({ maxLength: 20 }), { maxLength: 5 }), (names, junk) => {
        // Junk (not ready names) is left out; the order is the general one.
        const got = drain(ReadyListing.of([...new Set(names), ...junk.filter((j) => parseReadyName(j) === null)]));
        const want = byCompare(names);
        assert.deepEqual(got.map((n) => readySortKey(parseReadyName(n)!)), want.map((n) => readySortKey(parseReadyName(n)!)));
      }),
    );
  });

  it('say whether a new name sorts before the next one to hand out', () => {
    fc.assert(
      fc.property(fc.array(anyName, { minLength: 1, maxLength: 30 }), anyName, fc.nat(30), (names, extra, taken) => {
        const listing = ReadyListing.of([...new Set(names)]);
        listing.skip(taken);
        const rest = drain(ReadyListing.of([...new Set(names)])).slice(Math.min(taken, new Set(names).size));
        const before = listing.sortsBeforeNext(extra);
        if (rest.length === 0) return assert.equal(before, true);
        const short = names.every((n) => shortKeyOf(n) !== null);
        if (!short) return assert.equal(before, readyKeyOf(extra)! < readyKeyOf(rest[0]!)!);
        // A short listing compares short keys; a name of another shape counts as before.
        const key = shortKeyOf(extra);
        assert.equal(before, key === null || key < shortKeyOf(rest[0]!)!);
      }),
      { numRuns: 3000 },
    );
  });

  it('are cheap for a deep queue: short keys for names ddmq writes', () => {
    assert.equal(shortKeyOf('999.17960000000000000000.ddmqabc'), '3999.17960000000000000000.ddmqabc');
    for (const n of ['0999.17960000000000000000.ddmqa', '999.1796000000000000000.ddmqa', '9999999999.17960000000000000000.ddmqa', '999.17960000000000000000.ddmq', '999.17960000000000000000.ddmqa.b']) {
      assert.equal(shortKeyOf(n), null, n);
    }
  });
});

describe('queue numbers', () => {
  it('are 20 digits and strictly increase within a process even when the clock steps back', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1_700_000_000_000_000, max: 1_700_000_000_100_000 }), { minLength: 1, maxLength: 300 }), (clock) => {
        let i = 0;
        const numbers = new QueueNumbers(() => clock[i++ % clock.length]!);
        const out = clock.map(() => numbers.next());
        for (const q of out) assert.match(q, /^\d{20}$/);
        for (let k = 1; k < out.length; k++) assert.ok(out[k - 1]! < out[k]!, `${out[k - 1]} then ${out[k]}`);
      }),
    );
  });

  it('carry the sequence into the microseconds when 10,000 share one microsecond', () => {
    const numbers = new QueueNumbers(() => 1_700_000_000_000_000);
    const out = Array.from({ length: 10_001 }, () => numbers.next());
    assert.equal(out[9999], '17000000000000009999');
    assert.equal(out[10000], '17000000000000010000');
  });

  it('follow the wall clock', () => {
    const q = new QueueNumbers().next();
    const seconds = Number(q.slice(0, 10));
    assert.ok(Math.abs(seconds - Date.now() / 1000) < 5);
  });
});
