import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isDdmqError } from '../src/format/errors.js';
import { decodeMessage, encodeMessage, Message } from '../src/format/message.js';
import { parseReadyName } from '../src/format/names.js';
import {
  DEFAULT_SETTINGS,
  layerSettings,
  parseSettingsText,
  stringifySettings,
  validateSettings,
} from '../src/format/settings.js';

const file = parseReadyName('5.17000000000000000000.ddmq0123456789abcdef0123456789abcdef')!;
const ctx = { queue: 'q', file, path: '/r/q/x' };

const jsonValue = fc.jsonValue() as fc.Arbitrary<unknown>;
const extraKey = fc.string({ minLength: 1, maxLength: 12 }).filter(
  (k) => !['message', 'queue', 'priority', 'queue_number', 'id', 'filename', 'timeout', 'requeue', 'requeue_counter', 'requeue_limit'].includes(k),
);

describe('message codec', () => {
  it('round-trips every SPEC key and unknown keys, whatever their values', () => {
    fc.assert(
      fc.property(
        jsonValue,
        fc.record({
          priority: fc.nat(),
          lease: fc.option(fc.integer({ min: 1, max: 1e6 }), { nil: null }),
          requeue: fc.oneof(fc.boolean(), fc.nat(), fc.constant(null)),
          requeueCounter: fc.nat(),
          requeueLimit: fc.option(fc.nat(), { nil: null }),
        }),
        fc.dictionary(extraKey, jsonValue, { maxKeys: 5 }),
        (payload, f, extra) => {
          const msg = new Message({
            message: payload,
            queue: 'q',
            queueNumber: '17000000000000000001',
            id: '0123456789abcdef0123456789abcdef',
            filename: 'x',
            ...f,
            extra,
          });
          const text = encodeMessage(msg);
          const onDisk = JSON.parse(text) as Record<string, unknown>;
          // Never the two values the original tool reads otherwise (0 is "unset" there).
          assert.notEqual(onDisk.requeue_limit, 0);
          assert.notEqual(onDisk.requeue, 0);
          const back = decodeMessage(text, ctx);
          // A limit of 0 allows no requeue: it is written, and read back, as requeue: false.
          const expected = JSON.parse(JSON.stringify(msg.toJSON())) as Record<string, unknown>;
          if (f.requeueLimit === 0) Object.assign(expected, { requeue: false, requeue_limit: null });
          assert.deepEqual(back.toJSON(), expected);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("reads the original's files: Python json.dumps spacing, numeric queue_number, missing keys from the name", () => {
    const py =
      '{"priority": 999, "queue_number": 2, "requeue_counter": 0, "filename": "queue_one/999.2.ddmq1ed1", "queue": "queue_one", "requeue_limit": null, "timeout": null, "message": "msg", "requeue": false, "id": "1ed1"}';
    const m = decodeMessage(py, ctx);
    assert.equal(m.queueNumber, '2');
    assert.equal(m.requeue, false);
    assert.equal(m.text, 'msg');
    const minimal = decodeMessage('{"message": {"a": 1}}', ctx);
    assert.deepEqual([minimal.priority, minimal.queueNumber, minimal.id, minimal.queue, minimal.requeueCounter], [5, file.queueNumber, file.id, 'q', 0]);
    assert.equal(minimal.text, '{"a":1}');
    // A timeout of 0 means "unset" to the original, and to us.
    assert.equal(decodeMessage('{"message": "", "timeout": 0}', ctx).lease, null);
  });

  it('rejects what is not a message object, naming the file and the key', () => {
    const cases: [string, RegExp][] = [
      ['', /not valid JSON/],
      ['{"message": "x"', /not valid JSON/],
      ['[1,2]', /not a JSON object/],
      ['null', /not a JSON object/],
      ['"text"', /not a JSON object/],
      ['{"queue": "q"}', /no "message" key/],
      ['{"message": "x", "priority": -1}', /"priority"/],
      ['{"message": "x", "priority": 1.5}', /"priority"/],
      ['{"message": "x", "priority": "1"}', /"priority"/],
      ['{"message": "x", "queue_number": "12a"}', /"queue_number"/],
      ['{"message": "x", "timeout": "60"}', /"timeout"/],
      ['{"message": "x", "requeue": "yes"}', /"requeue"/],
      ['{"message": "x", "requeue_counter": null, "requeue_limit": -2}', /"requeue_limit"/],
      ['{"message": "x", "id": 5}', /"id"/],
    ];
    for (const [text, why] of cases) {
      assert.throws(
        () => decodeMessage(text, ctx),
        (e) => isDdmqError(e, 'CORRUPT_MESSAGE') && why.test(e.message) && e.message.includes('/r/q/x'),
        text,
      );
    }
  });

  it('never throws anything but CORRUPT_MESSAGE, on any input (fuzz)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary' }), fc.json(), jsonValue.map((v) => JSON.stringify({ message: 'x', ...(typeof v === 'object' && v ? v : { v }) }))), (text) => {
        try {
          decodeMessage(text, ctx);
        } catch (err) {
          assert.ok(isDdmqError(err, 'CORRUPT_MESSAGE'), String(err));
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('refuses JSON nested deeper than can be written again, but not strings that look nested', () => {
    const deep = `{"message": ${'['.repeat(5000)}${']'.repeat(5000)}}`;
    assert.throws(() => decodeMessage(deep, ctx), (e) => isDdmqError(e, 'CORRUPT_MESSAGE') && /nested deeper/.test(e.message));
    const looks = JSON.stringify({ message: '['.repeat(5000) + '\\"{'.repeat(100) });
    assert.equal(decodeMessage(looks, ctx).text.length, 5000 + 300);
    const ok = `{"message": ${'['.repeat(900)}${']'.repeat(900)}}`;
    assert.doesNotThrow(() => JSON.stringify(decodeMessage(ok, ctx)));
  });

  it('keeps "__proto__" as a plain key, never as a prototype', () => {
    const m = decodeMessage('{"message": "x", "__proto__": {"polluted": true}}', ctx);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal((m.extra as Record<string, unknown>).polluted, undefined);
    assert.deepEqual(JSON.parse(encodeMessage(m)).__proto__, { polluted: true });
  });
});

describe('settings', () => {
  it('layers defaults < root < queue < call, ignoring undefined', () => {
    const s = layerSettings({ priority: 5, message_timeout: 30 }, { priority: 7 }, { message_timeout: undefined, requeue: false });
    assert.deepEqual(s, { ...DEFAULT_SETTINGS, priority: 7, message_timeout: 30, requeue: false });
    assert.deepEqual(layerSettings(), DEFAULT_SETTINGS);
  });

  it('parses empty, {} and YAML 1.1 files (yes/no are booleans, as in PyYAML)', async () => {
    assert.deepEqual(await parseSettingsText('', 'f'), {});
    assert.deepEqual(await parseSettingsText('  {}\n', 'f'), {});
    assert.deepEqual(await parseSettingsText('requeue: no\npriority: 3\nother_tool_key: [1, 2]\n', 'f'), {
      requeue: false,
      priority: 3,
      other_tool_key: [1, 2],
    });
    // What the original's create_queue writes.
    const original = 'cleaned: 0\nmessage_timeout: 600\npriority: 999\nrequeue: true\nrequeue_prio: 0\n';
    assert.deepEqual(await parseSettingsText(original, 'f'), { cleaned: 0, message_timeout: 600, priority: 999, requeue: true, requeue_prio: 0 });
  });

  it('names the file and the key of a bad setting', async () => {
    const bad: [string, RegExp][] = [
      ['priority: -1', /"priority" in \/x\/ddmq\.yaml/],
      ['priority: 1.5', /"priority"/],
      ['priority: 1e400', /"priority"/],
      ['message_timeout: 0', /"message_timeout"/],
      ['message_timeout: "60"', /"message_timeout"/],
      ['requeue: maybe', /"requeue"/],
      ['fsync: 1', /"fsync"/],
      ['cleaned: -5', /"cleaned"/],
      ['priority: null', /"priority"/],
      ['- a\n- b', /mapping/],
      ['just text', /mapping/],
      ['a: [1, 2', /cannot parse \/x\/ddmq\.yaml/],
      ['a: 1\na: 2', /cannot parse/],
      ['a: &x [1]\nb: *x\n' + Array.from({ length: 200 }, (_, i) => `c${i}: *x`).join('\n'), /cannot parse/],
    ];
    for (const [text, why] of bad) {
      await assert.rejects(parseSettingsText(text, '/x/ddmq.yaml'), (e) => isDdmqError(e, 'INVALID_SETTING') && why.test(e.message), text);
    }
  });

  it('evaluates nothing: unknown tags such as !!js/function are read as plain text', async () => {
    const layer = await parseSettingsText('a: !!js/function "function(){ process.exit(9) }"\nb: !!python/object:os.system ls', 'f');
    assert.equal(typeof layer.a, 'string');
    assert.equal(typeof layer.b, 'string');
  });

  it('writes an empty layer as {} so that the original parses it to a mapping', async () => {
    assert.equal(await stringifySettings({}), '{}\n');
    const text = await stringifySettings({ priority: 3, requeue: false });
    assert.deepEqual(await parseSettingsText(text, 'f'), { priority: 3, requeue: false });
  });

  it('validates any parsed value without throwing anything but INVALID_SETTING (fuzz)', () => {
    fc.assert(
      fc.property(fc.oneof(jsonValue, fc.dictionary(fc.constantFrom('priority', 'requeue', 'message_timeout', 'fsync', 'cleaned', 'requeue_prio', 'x'), jsonValue)), (v) => {
        try {
          validateSettings(v, 'f');
        } catch (err) {
          assert.ok(isDdmqError(err, 'INVALID_SETTING'), String(err));
        }
      }),
      { numRuns: 1000 },
    );
  });
});
