/**
 * Smaller findings of the command line, each a test: what nack, clean and publish say
 * about where a message went; redrive that creates nothing unasked and reports unknown
 * ids; delayed messages in del_msg and purge; bounded numbers; values named as they were
 * given; json commands that say one thing only; a create that cannot spin.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Broker } from '../src/index.js';
import { parseReadyName } from '../src/internals.js';
import { CLI, ls, tempDir } from './helpers.js';

function ddmq(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 20_000 });
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const jsonLines = (text: string) => text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

async function setup(settings: Record<string, unknown> = {}) {
  const root = join(tempDir(), 'root');
  const broker = await Broker.open(root, { create: true });
  await broker.createQueue('q', settings);
  return { root, broker };
}

describe('where a message went', () => {
  it('nack to the dead-letter queue says so, in plain and json; clean counts dead letters', async () => {
    const { root, broker } = await setup({ dead_letter: 'dead', expiry_grace: 0 });
    await broker.publish('q', 'a', { requeueLimit: 0 });
    await broker.publish('q', 'b', { requeueLimit: 0 });
    const [a, b] = await broker.consume('q', { n: 2 });
    let r = ddmq('nack', root, 'q', a!.filename);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, new RegExp(`^dead-lettered q/work/${a!.filename} to dead/\\d+\\.\\d+\\.ddmq${a!.id}\\n$`));
    r = ddmq('nack', root, 'q', b!.filename, '--format', 'json');
    const row = jsonLines(r.out)[0]!;
    assert.deepEqual([row.action, row.requeued_as, typeof row.dead_lettered_as], ['dead-lettered', null, 'string']);
    assert.ok(String(row.dead_lettered_as).startsWith('dead/') && String(row.dead_lettered_as).includes(b!.id));

    const expired = await Broker.open(root, { now: () => Date.now() - 10_000 });
    await expired.publish('q', 'c', { requeueLimit: 0, lease: 1 });
    await expired.consume('q');
    assert.equal(ddmq('clean', root, 'q').out, 'cleaned q (0 requeued, 0 dropped, 1 dead-lettered, 0 corrupt)\n');
    assert.equal((await broker.counts('dead'))[0]!.ready, 3);
  });

  it('nack of a failure says when it is ready again and where it waits', async () => {
    const { root, broker } = await setup({ retry_delay: 30 });
    await broker.publish('q', 'x');
    const m = (await broker.consumeOne('q'))!;
    const r = ddmq('nack', root, 'q', m.filename, '--format', 'json');
    const row = jsonLines(r.out)[0]!;
    assert.equal(row.action, 'requeued');
    assert.ok(Math.abs(Number(row.ready_at) - (Date.now() / 1000 + 30)) < 3);
    assert.deepEqual(ls(join(root, 'q', 'delayed')), [`${row.ready_at}.${row.requeued_as}`]);
    await broker.publish('q', 'y');
    const y = (await broker.consumeOne('q'))!;
    assert.match(ddmq('nack', root, 'q', y.filename).out, /^requeued q\/work\/\S+ as \S+, ready in (29|30|31) s \(it waits in q\/delayed\/ until then\)\n$/);
  });

  it('publish --delay names the file in delayed/, and when it is ready', async () => {
    const { root } = await setup();
    const row = jsonLines(ddmq('publish', root, 'q', 'later', '--delay', '60', '--format', 'json').out)[0]!;
    assert.deepEqual(ls(join(root, 'q', 'delayed')), [String(row.delayed_as).slice('q/delayed/'.length)]);
    assert.equal(row.delayed_as, `q/delayed/${row.ready_at}.${row.filename}`);
    const plain = ddmq('publish', root, 'q', 'later', '--delay', '60').out;
    assert.match(plain, /^published q\/delayed\/\d+\.999\.\d{20}\.ddmq[0-9a-f]{32} \(ready at \d{4}-\d\d-\d\dT.*, as q\/999\.\d{20}\.ddmq[0-9a-f]{32}\)\n$/);
  });
});

describe('delayed messages in del_msg and purge', () => {
  it('del_msg deletes a delayed message by its name; purge counts delayed ones apart', async () => {
    const { root } = await setup();
    const row = jsonLines(ddmq('publish', root, 'q', 'later', '--delay', '60', '--format', 'json').out)[0]!;
    const delayedName = String(row.delayed_as).slice('q/delayed/'.length);
    const r = ddmq('del_msg', root, 'q', delayedName);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(ls(join(root, 'q', 'delayed')), []);
    assert.equal(ddmq('del_msg', root, 'q', delayedName).code, 5);
    ddmq('publish', root, 'q', 'later', '--delay', '60');
    ddmq('publish', root, 'q', 'now');
    assert.equal(ddmq('purge', root, 'q').out, 'purged q (1 ready, 1 delayed, 0 in flight)\n');
  });
});

describe('redrive', () => {
  async function deadLetters(root: string, broker: Broker, n: number): Promise<string[]> {
    await broker.setSettings('q', { dead_letter: 'dead' });
    for (let i = 0; i < n; i++) await broker.publish('q', `m${i}`, { requeueLimit: 0 });
    for (const m of await broker.consume('q', { n })) await broker.nack(m);
    return ls(join(root, 'dead')).map((f) => parseReadyName(f)?.id).filter((id): id is string => id !== undefined);
  }

  it('--to a queue that does not exist is refused without -f, before anything moves', async () => {
    const { root, broker } = await setup();
    await deadLetters(root, broker, 2);
    const r = ddmq('redrive', root, 'dead', '--to', 'nosuch');
    assert.equal(r.code, 2);
    assert.match(r.err, /queue nosuch does not exist/);
    assert.equal(fs.existsSync(join(root, 'nosuch')), false, 'not created');
    assert.equal((await broker.counts('dead'))[0]!.ready, 2, 'nothing moved');
    assert.equal((await broker.counts('dead'))[0]!.inFlight, 0);
    assert.equal(ddmq('redrive', root, 'dead', '--to', 'nosuch', '-f', '-s').code, 0);
    assert.equal((await broker.counts('nosuch'))[0]!.ready, 2);
  });

  it('--ids with an id that is not there says so, exit 5; the others are moved', async () => {
    const { root, broker } = await setup();
    const [id] = await deadLetters(root, broker, 2);
    const unknown = 'f'.repeat(32);
    const r = ddmq('redrive', root, 'dead', '--ids', `${id},${unknown}`, '--format', 'json');
    assert.equal(r.code, 5);
    assert.match(r.err, new RegExp(`no dead letter with id ${unknown} in queue dead`));
    assert.deepEqual(jsonLines(r.out)[0], { queue: 'dead', moved: 1, skipped: 0, missing: [unknown] });
    assert.equal((await broker.counts('q'))[0]!.ready, 1);
  });

  it('a dead letter whose own queue is gone stays, without -f', async () => {
    const { root, broker } = await setup();
    await deadLetters(root, broker, 1);
    await broker.deleteQueue('q');
    const r = ddmq('redrive', root, 'dead', '--format', 'json');
    assert.deepEqual(jsonLines(r.out)[0], { queue: 'dead', moved: 0, skipped: 1, missing: [] });
    assert.equal(fs.existsSync(join(root, 'q')), false);
    assert.equal((await broker.counts('dead'))[0]!.ready, 1);
  });
});

describe('numbers and values', () => {
  it('leases and timeouts are bounded as delays are (ten years)', async () => {
    const { root } = await setup();
    for (const args of [
      ['publish', root, 'q', 'x', '-t', '9007199254740991'],
      ['publish', root, 'q', 'x', '-t', '315360001'],
      ['consume', root, 'q', '-t', '9007199254740991'],
      ['settings', root, 'q', '--set', 'message_timeout=9007199254740991'],
    ]) {
      const r = ddmq(...args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
      assert.match(r.err, /ten years/);
    }
    assert.deepEqual(ls(join(root, 'q')), ['ddmq.yaml', 'work'], 'nothing published');
    assert.equal(ddmq('publish', root, 'q', 'x', '-t', '315360000', '-s').code, 0);
  });

  it('a value that reads as infinity is named as it was given, not as null', async () => {
    const { root } = await setup();
    let r = ddmq('settings', root, 'q', '--set', 'message_timeout=1e400');
    assert.equal(r.code, 2);
    assert.match(r.err, /got "1e400"/);
    assert.doesNotMatch(r.err, /null/);
    fs.writeFileSync(join(root, 'q', 'ddmq.yaml'), 'priority: .inf\n');
    r = ddmq('view', root, 'q');
    assert.equal(r.code, 2);
    assert.match(r.err, /got \.inf/);
    fs.writeFileSync(join(root, 'q', 'ddmq.yaml'), '{}\n');
    r = ddmq('json', `{"cmd": "publish", "root": ${JSON.stringify(root)}, "queue": "q", "message": "x", "priority": 1e400}`);
    assert.equal(r.code, 2);
    assert.match(r.err, /got 1e400/);
  });
});

describe('ddmq json says one thing only', () => {
  it('refuses a repeated key, and cmd with command, running nothing', async () => {
    const { root, broker } = await setup();
    await broker.publish('q', 'stays');
    const R = JSON.stringify(root);
    for (const text of [
      `{"cmd": "purge", "root": ${R}, "queue": "q", "cmd": "view"}`,
      `{"cmd": "view", "root": ${R}, "command": "purge", "queue": "q"}`,
      `{"cmd": "purge", "root": "/nonexistent", "queue": "q", "root": ${R}}`,
      `{"cmd": "purge", "root": ${R}, "queue": "q", "q\\u0075eue": "q"}`,
    ]) {
      const r = ddmq('json', text);
      assert.equal(r.code, 2, text);
      assert.match(r.err, /more than once|not both/);
    }
    assert.equal((await broker.counts('q'))[0]!.ready, 1, 'nothing was purged');
    // Nested objects may repeat what the top level has.
    const ok = ddmq('json', `{"cmd": "publish", "root": ${R}, "queue": "q", "message": {"cmd": 1, "root": [{"root": 2}]}, "s": true}`);
    assert.equal(ok.code, 0, ok.err);
  });
});

describe('create', () => {
  it('create -f under a folder that takes no new folders ends at once with an error, not a spin', () => {
    const started = Date.now();
    const r = ddmq('create', '-f', '/proc/ddmq-test-root/sub', 'q');
    assert.equal(r.code, 4, r.err);
    assert.match(r.err, /cannot create folder \/proc\/ddmq-test-root/);
    assert.ok(Date.now() - started < 10_000);
  });
});

describe('settings and options that contradict themselves', () => {
  it('a queue cannot be its own dead-letter queue (its dead letters would be dropped)', async () => {
    const { root, broker } = await setup();
    const r = ddmq('settings', root, 'q', '--set', 'dead_letter=q');
    assert.equal(r.code, 2);
    assert.match(r.err, /cannot be its own dead-letter queue/);
    await assert.rejects(broker.createQueue('other', { dead_letter: 'other' }), /cannot be its own dead-letter queue/);
    // In the root's settings it may name a queue: that queue is the last stop.
    assert.equal(ddmq('settings', root, '--set', 'dead_letter=q', '-s').code, 0);
  });

  it('a requeue priority with no requeue is refused, on the command line and in json', async () => {
    const { root } = await setup();
    for (const args of [
      ['publish', root, 'q', 'x', '--requeue_prio', '3', '--no-requeue'],
      ['publish', root, 'q', 'x', '--no-requeue', '--requeue_prio', '3'],
      ['json', JSON.stringify({ cmd: 'publish', root, queue: 'q', message: 'x', requeue: false, requeue_prio: 3 })],
      ['json', JSON.stringify({ cmd: 'publish', root, queue: 'q', message: 'x', no_requeue: true, requeue_prio: 3 })],
    ]) {
      const r = ddmq(...args);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.err, /contradict/);
    }
    assert.deepEqual(ls(join(root, 'q')), ['ddmq.yaml', 'work']);
  });

  it('view and clean with an empty list of queues are refused, not taken for every queue', async () => {
    const { root } = await setup();
    for (const args of [['view', root, ''], ['clean', root, ','], ['view', root, ',', '-n']]) {
      const r = ddmq(...args);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.err, /no queue names/);
    }
  });

  it('a YAML error says where, without a dangling colon', async () => {
    const { root } = await setup();
    fs.writeFileSync(join(root, 'q', 'ddmq.yaml'), 'priority: 1\n  bad: [\n');
    const r = ddmq('view', root, 'q');
    assert.equal(r.code, 2);
    assert.match(r.err, /cannot parse .*ddmq\.yaml as YAML: .*line \d+, column \d+\n$/);
  });

  it('a FIFO in place of a ddmq.yaml is refused by every command alike, not read as an empty file', async () => {
    const { root, broker } = await setup({ message_timeout: 5 });
    await broker.publish('q', 'x');
    fs.rmSync(join(root, 'q', 'ddmq.yaml'));
    spawnSync('mkfifo', [join(root, 'q', 'ddmq.yaml')]);
    for (const args of [['view', root, 'q'], ['peek', root, 'q'], ['consume', root, 'q'], ['clean', root, 'q'], ['settings', root, 'q'], ['publish', root, 'q', 'y']]) {
      const r = ddmq(...args);
      assert.equal(r.code, 2, `${args[0]}: ${r.out}${r.err}`);
      assert.match(r.err, /ddmq\.yaml: it is not a regular file/);
    }
    assert.equal(ls(join(root, 'q', 'work')).length, 0, 'nothing consumed');
  });

  it('a corrupt message is reported by its path in the tree, also when the folders are pinned', async () => {
    const { root } = await setup();
    fs.writeFileSync(join(root, 'q', '1.17960000000000000000.ddmq0123456789abcdef0123456789abcdef'), 'not json');
    fs.utimesSync(join(root, 'q', '1.17960000000000000000.ddmq0123456789abcdef0123456789abcdef'), 1e9, 1e9);
    const r = spawnSync(process.execPath, [CLI, 'consume', root, 'q'], { encoding: 'utf8', env: { ...process.env, DDMQ_PIN_FOLDERS: '1' } });
    assert.equal(r.status, 3, r.stderr);
    assert.match(r.stderr, new RegExp(`corrupt message file ${join(root, 'q', 'work')}/`));
    assert.doesNotMatch(r.stderr, /\/proc\//);
  });
});
