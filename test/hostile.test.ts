/**
 * Hostile and bad input at every entry point: the library, CLI flags, the json command,
 * settings files and message files on disk. Each case must end in a clear error or a
 * documented safe behaviour, with nothing outside the root read or written and nothing
 * in the queue lost. The "outside" folder beside the root holds canaries: a message a
 * consumer must never deliver, and files that must not change.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Broker, type DdmqError, isDdmqError } from '../src/index.js';
import { tmpdir } from 'node:os';
import { CLI, setMtime, snapshot } from './helpers.js';

// Removed by the last after() below, once it has checked what is left.
const base = fs.mkdtempSync(join(process.env.DDMQ_TEST_DIR ?? tmpdir(), 'ddmq-hostile-'));
const root = join(base, 'root');
const outside = join(base, 'outside');
const VALID_ID = '0123456789abcdef0123456789abcdef';
const ready = (prio = 5) => `${prio}.17000000000000000000.ddmq${VALID_ID}`;
const warnings: DdmqError[] = [];
let broker: Broker;
let keepIds: string[] = [];

let outsideBefore: Record<string, string>;

before(async () => {
  fs.mkdirSync(join(outside, 'fakeq', 'work'), { recursive: true });
  fs.writeFileSync(join(outside, 'canary.txt'), 'canary');
  fs.writeFileSync(join(outside, 'outside-message'), JSON.stringify({ message: 'OUTSIDE' }));
  fs.writeFileSync(join(outside, 'fakeq', 'ddmq.yaml'), '{}\n');
  fs.writeFileSync(join(outside, 'fakeq', ready()), JSON.stringify({ message: 'OUTSIDE' }));
  outsideBefore = snapshot(outside);
  broker = await Broker.open(root, { create: true, onWarning: (w) => warnings.push(w) });
  await broker.createQueue('q');
  await broker.createQueue('keep');
  for (const text of ['one', 'two', 'three']) keepIds.push((await broker.publish('keep', text)).id);
});

after(async () => {
  // Nothing outside the root was written, and nothing of the sentinels was lost.
  assert.deepEqual(snapshot(outside), outsideBefore);
  const fresh = await Broker.open(root);
  const kept = await fresh.consume('keep', { n: 10, skipCleaning: true });
  assert.deepEqual(kept.map((m) => m.id).sort(), [...keepIds].sort());
  fs.rmSync(base, { recursive: true, force: true });
});

const code = (c: string) => (e: unknown) => isDdmqError(e) && e.code === c;

function ddmq(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', maxBuffer: 64 * 2 ** 20 });
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace for bad input');
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const BAD_QUEUE_NAMES = ['..', '.', '../outside', '../outside/fakeq', '/etc', 'a/b', 'a\\b', 'a\0b', '', ' ', 'q\n', '.hidden', 'x'.repeat(201), 'ｑ', 'qu\u0435ue', '\u202eq', 'q*', '~root'];
const BAD_FILE_NAMES = ['../outside-message', `../../outside/fakeq/${ready()}`, '/etc/passwd', `${ready()}/../../x`, `work/${ready()}`, '..', '.', '', `${ready()}\0`, 'a'.repeat(300), `9999999999.${ready()}${'a'.repeat(300)}`, ready().replace('.ddmq', '.d dmq')];

describe('hostile input: the library', () => {
  it('refuses every bad queue name at every call, before touching a file', async () => {
    const calls: [string, (q: string) => Promise<unknown>][] = [
      ['createQueue', (q) => broker.createQueue(q)],
      ['deleteQueue', (q) => broker.deleteQueue(q)],
      ['publish', (q) => broker.publish(q, 'x')],
      ['consume', (q) => broker.consume(q)],
      ['purge', (q) => broker.purge(q)],
      ['clean', (q) => broker.clean(q)],
      ['counts', (q) => broker.counts(q)],
      ['settings', (q) => broker.settings(q)],
      ['setSettings', (q) => broker.setSettings(q, { priority: 1 })],
      ['readSettingsFile', (q) => broker.readSettingsFile(q)],
      ['ack', (q) => broker.ack(q, `1.${ready()}`)],
      ['deleteMessage', (q) => broker.deleteMessage(q, ready())],
    ];
    for (const name of BAD_QUEUE_NAMES) {
      for (const [what, call] of calls) await assert.rejects(call(name), code('INVALID_NAME'), `${what}(${JSON.stringify(name)})`);
    }
    assert.deepEqual(fs.readdirSync(root).sort(), ['ddmq.yaml', 'keep', 'q']);
  });

  it('refuses every bad message file name at ack, nack, extend and deleteMessage', async () => {
    for (const name of BAD_FILE_NAMES) {
      await assert.rejects(broker.ack('q', name), code('INVALID_NAME'), name);
      await assert.rejects(broker.nack('q', name), code('INVALID_NAME'), name);
      await assert.rejects(broker.extend('q', name, 10), code('INVALID_NAME'), name);
      await assert.rejects(broker.deleteMessage('q', name), code('INVALID_NAME'), name);
    }
  });

  it('refuses bad roots', async () => {
    for (const r of ['', 'a\0b', 5, null]) await assert.rejects(Broker.open(r as string), code('INVALID_ARGUMENT'), String(r));
  });

  it('refuses numbers out of range or of the wrong type', async () => {
    const bad = [-1, 1.5, NaN, Infinity, -Infinity, 2 ** 53, '5', true, {}];
    for (const v of bad) {
      for (const key of ['priority', 'lease', 'requeuePrio', 'requeueLimit']) {
        await assert.rejects(broker.publish('q', 'x', { [key]: v } as never), code('INVALID_ARGUMENT'), `${key}: ${String(v)}`);
      }
      await assert.rejects(broker.consume('q', { n: v as number }), code('INVALID_ARGUMENT'), `n: ${String(v)}`);
      await assert.rejects(broker.consume('q', { lease: v as number }), code('INVALID_ARGUMENT'), `lease: ${String(v)}`);
    }
    await broker.publish('q', 'x');
    const [m] = await broker.consume('q');
    for (const v of [0, -5, 1.5, NaN, 2 ** 60]) await assert.rejects(broker.extend(m!, v), code('INVALID_ARGUMENT'));
    await broker.ack(m!);
  });

  it('refuses payloads that are not JSON values; keeps odd strings exactly', async () => {
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    let deep: Record<string, unknown> = {};
    const top = deep;
    for (let i = 0; i < 100_000; i++) deep = deep.a = {};
    for (const body of [() => 1, Symbol('s'), 10n, circular, top]) {
      await assert.rejects(broker.publish('q', body), code('INVALID_ARGUMENT'), String(typeof body));
    }
    const odd = ['', '\0', '\uD800 lone surrogate', 'ü \u202e \r\n\t', '"}{\\', 'x'.repeat(100)];
    for (const text of odd) await broker.publish('q', text);
    const got = await broker.consume('q', { n: 10 });
    assert.deepEqual(got.map((m) => m.message), odd);
    for (const m of got) await broker.ack(m);
  });

  it('carries empty and 10 MB payloads whole, through the library and the CLI', async () => {
    const big = 'x'.repeat(10 * 2 ** 20);
    await broker.publish('q', big);
    await broker.publish('q', '');
    const r = ddmq(['consume', root, 'q', '-n', '2', '--format', 'json']);
    assert.equal(r.code, 0);
    const [a, b] = r.out.trim().split('\n').map((l) => JSON.parse(l) as { message: string; filename: string });
    assert.equal(a!.message.length, big.length);
    assert.equal(b!.message, '');
    assert.equal(ddmq(['ack', root, 'q', `${a!.filename},${b!.filename}`, '-s']).code, 0);
  });
});

describe('hostile input: the command line and the json command', () => {
  it('refuses invalid UTF-8 in names and the root; keeps it, as U+FFFD, in message text', () => {
    // Arguments with raw bytes can only be made by a shell: $'\xff' is the byte 0xff.
    const viaBash = (args: string) => {
      const r = spawnSync('bash', ['-c', `exec "$NODE" "$CLI" ${args}`], {
        encoding: 'utf8',
        env: { ...process.env, NODE: process.execPath, CLI, ROOT: root },
      });
      return { code: r.status, out: r.stdout, err: r.stderr };
    };
    let r = viaBash(`publish "$ROOT" $'q\\xff' m`);
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, /invalid queue name/);
    r = viaBash(`publish "$ROOT"$'\\xff' q m`);
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, /not valid UTF-8/);
    r = viaBash(`publish "$ROOT" q $'a\\xffb' --format json`);
    assert.equal(r.code, 0, r.err);
    assert.equal(JSON.parse(r.out).message, 'a\uFFFDb');
    assert.equal(ddmq(['purge', root, 'q', '-s']).code, 0);
  });

  it('refuses bad names and numbers in flags, exit 2', () => {
    for (const name of BAD_QUEUE_NAMES.filter((n) => !n.includes('\0'))) {
      for (const cmd of [['publish', root, name, 'x'], ['consume', root, name], ['create', root, name], ['purge', root, name], ['delete', root, name]]) {
        const r = ddmq(cmd);
        assert.equal(r.code, 2, `${cmd.join(' ')}: ${r.err}`);
      }
    }
    for (const name of BAD_FILE_NAMES.filter((n) => !n.includes('\0') && n !== '')) {
      for (const cmd of ['ack', 'nack', 'del_msg']) assert.equal(ddmq([cmd, root, 'q', name]).code, 2, `${cmd} ${name}`);
    }
    for (const [flag, value] of [['-p', '-1'], ['-p', '1.5'], ['-p', '1e3'], ['-p', '0x10'], ['-p', ''], ['-t', '0'], ['-t', 'abc'], ['-l', '-2'], ['--requeue_prio', '99999999999999999999']]) {
      assert.equal(ddmq(['publish', root, 'q', 'x', flag!, value!]).code, 2, `${flag} ${value}`);
    }
    assert.equal(ddmq(['consume', root, 'q', '-n', '99999999999999999999']).code, 2);
  });

  it('refuses traversal and prototype keys in json commands', () => {
    const cases = [
      { cmd: 'publish', root, queue: '../outside/fakeq', message: 'x' },
      { cmd: 'consume', root: join(root, '..', 'outside'), queue: 'fakeq' },
      { cmd: 'ack', root, queue: 'q', msg_files: ['../../outside/canary.txt'] },
      { cmd: 'del_msg', root, queue: 'q', msg_files: `${ready()},/etc/passwd` },
      { cmd: 'publish', root, queue: 'q\u0000', message: 'x' },
      { cmd: 'publish', root: `${root}\u0000x`, queue: 'q', message: 'x' },
      JSON.parse(`{"cmd": "view", "root": ${JSON.stringify(root)}, "__proto__": {"f": true}}`),
      { cmd: 'view', root, constructor: 'x' },
    ];
    for (const payload of cases) {
      const r = ddmq(['json', JSON.stringify(payload)]);
      assert.equal(r.code, 2, `${JSON.stringify(payload)}: ${r.err}`);
    }
  });
});

describe('hostile input: settings files', () => {
  it('a ddmq.yaml that is a link out of the tree is refused, not read', async () => {
    const r = join(base, 'linked-root');
    fs.mkdirSync(r);
    fs.symlinkSync(join(outside, 'canary.txt'), join(r, 'ddmq.yaml'));
    await assert.rejects(Broker.open(r), code('UNSAFE_PATH'));
    await broker.createQueue('linkedyaml');
    fs.unlinkSync(join(root, 'linkedyaml', 'ddmq.yaml'));
    fs.symlinkSync(join(outside, 'fakeq', 'ddmq.yaml'), join(root, 'linkedyaml', 'ddmq.yaml'));
    const fresh = await Broker.open(root);
    await assert.rejects(fresh.publish('linkedyaml', 'x'), code('UNSAFE_PATH'));
  });

  it('invalid UTF-8, hostile YAML and huge numbers are INVALID_SETTING naming the file', async () => {
    const bad: (string | Buffer)[] = [
      Buffer.from([0x70, 0x72, 0x69, 0x6f, 0x72, 0x69, 0x74, 0x79, 0x3a, 0x20, 0xff]),
      'a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d]',
      'message_timeout: 1e999',
      'priority: 99999999999999999999999',
      'requeue: [true]',
      'priority: -0.5',
      '{',
      '\0',
    ];
    for (const text of bad) {
      await broker.createQueue('badyaml');
      fs.writeFileSync(join(root, 'badyaml', 'ddmq.yaml'), text);
      const fresh = await Broker.open(root);
      await assert.rejects(
        fresh.publish('badyaml', 'x'),
        (e) => code('INVALID_SETTING')(e) && (e as Error).message.includes(join(root, 'badyaml', 'ddmq.yaml')),
        String(text).slice(0, 40),
      );
      fs.writeFileSync(join(root, 'badyaml', 'ddmq.yaml'), '{}');
      await fresh.deleteQueue('badyaml');
    }
  });
});

describe('hostile input: message files on disk', () => {
  async function consumeAll(q: string) {
    const fresh = await Broker.open(root, { onWarning: (w) => warnings.push(w) });
    return fresh.consume(q, { n: 100, skipCleaning: true });
  }

  it('links, FIFOs, folders, invalid UTF-8, oversized and broken files are moved aside, never delivered or followed', async () => {
    await broker.createQueue('disk');
    const dir = join(root, 'disk');
    const name = (i: number) => `${i}.17000000000000000000.ddmq${VALID_ID}`;
    fs.symlinkSync(join(outside, 'outside-message'), join(dir, name(1)));
    execFileSync('mkfifo', [join(dir, name(2))]);
    fs.mkdirSync(join(dir, name(3)));
    fs.writeFileSync(join(dir, name(4)), Buffer.from([0x7b, 0x22, 0x6d, 0x65, 0x73, 0x73, 0x61, 0x67, 0x65, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d]));
    fs.writeFileSync(join(dir, name(5)), '{"message": "trunc');
    fs.writeFileSync(join(dir, name(6)), '[1, 2, 3]');
    fs.writeFileSync(join(dir, name(7)), '{"message": "x", "priority": "high"}');
    fs.closeSync(fs.openSync(join(dir, name(8)), 'w'));
    fs.truncateSync(join(dir, name(8)), 600 * 2 ** 20); // sparse: costs no disk
    for (const i of [2, 4, 5, 6, 7, 8]) setMtime(join(dir, name(i)), 60_000); // old: not "being written"
    await broker.publish('disk', 'the good one');
    const before = warnings.length;
    const got = await consumeAll('disk');
    assert.deepEqual(got.map((m) => m.text), ['the good one']);
    const moved = fs.readdirSync(join(dir, 'corrupt'));
    assert.equal(moved.length, 8);
    assert.equal(warnings.length - before, 8);
    assert.ok(warnings.slice(before).every((w) => w.code === 'CORRUPT_MESSAGE'));
    // The link was moved as a link: its target was neither read nor moved.
    const link = moved.find((n) => n.startsWith('1') || n.includes(`.1.17`))!;
    assert.ok(fs.lstatSync(join(dir, 'corrupt', link)).isSymbolicLink());
  });

  it('expired in-flight entries that are links are moved aside by clean, not followed', async () => {
    await broker.createQueue('disk2');
    fs.symlinkSync(join(outside, 'outside-message'), join(root, 'disk2', 'work', `1.5.17000000000000000000.ddmq${VALID_ID}`));
    const [r] = await broker.clean('disk2');
    assert.deepEqual([r!.requeued, r!.corrupt], [0, 1]);
    assert.deepEqual(await consumeAll('disk2'), []);
  });
});

describe('hostile input: links planted where the tree has folders', () => {
  it('a queue folder that is a link out of the tree is neither listed nor used', async () => {
    fs.symlinkSync(join(outside, 'fakeq'), join(root, 'fakeq'));
    const fresh = await Broker.open(root);
    assert.ok(!(await fresh.listQueues()).includes('fakeq'));
    await assert.rejects(fresh.consume('fakeq'), code('UNSAFE_PATH'));
    await assert.rejects(fresh.publish('fakeq', 'x'), code('UNSAFE_PATH'));
    assert.equal(ddmq(['consume', root, 'fakeq']).code, 2);
    fs.unlinkSync(join(root, 'fakeq'));
  });

  it('work/ or corrupt/ as links out of the tree are refused', async () => {
    for (const sub of ['work', 'corrupt']) {
      await broker.createQueue('linked');
      const dir = join(root, 'linked');
      await broker.publish('linked', 'stays');
      fs.rmSync(join(dir, sub), { recursive: true, force: true });
      fs.symlinkSync(join(outside, 'fakeq', 'work'), join(dir, sub));
      const fresh = await Broker.open(root);
      await assert.rejects(fresh.consume('linked'), code('UNSAFE_PATH'), sub);
      assert.equal(fs.readdirSync(dir).filter((n) => n.includes('.ddmq')).length, 1, 'the message stays');
      fs.unlinkSync(join(dir, sub));
      fs.mkdirSync(join(dir, sub));
      await fresh.deleteQueue('linked');
    }
  });
});
