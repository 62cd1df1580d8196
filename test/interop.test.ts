/**
 * SPEC §7: a tree written by us is usable by the original Python tool and the other way
 * round. The original is re-enacted by fixtures/original_ops.py (its file operations,
 * step by step), run with a Python that has PyYAML.
 *
 * The second and third parts pin the README's table of differences ("Working with the
 * original Python tool"): where ddmq writes files so that both tools read one meaning,
 * and what differs still.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Broker, parseInFlightName } from '../src/index.js';
import { ls, REPO, setMtime, tempDir, worker } from './helpers.js';

const SCRIPT = join(REPO, 'test', 'fixtures', 'original_ops.py');

function findPython(): string | undefined {
  for (const py of [process.env.DDMQ_TEST_PYTHON, 'python3', '/usr/bin/python3'].filter(Boolean) as string[]) {
    if (spawnSync(py, ['-c', 'import yaml'], { stdio: 'ignore' }).status === 0) return py;
  }
  return undefined;
}
const PYTHON = findPython();
// CI installs python3-yaml; without it these tests cannot run at all, which must not pass silently there.
if (PYTHON === undefined && process.env.CI) throw new Error('interop tests need python3 with PyYAML (apt-get install python3-yaml)');

function originalRun(...args: (string | number)[]): SpawnSyncReturns<string> {
  return spawnSync(PYTHON!, [SCRIPT, ...args.map(String)], { encoding: 'utf8' });
}

function original(...args: (string | number)[]): string {
  const r = originalRun(...args);
  assert.equal(r.status, 0, `original_ops.py ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

/** The same, as a child running alongside others. */
function originalAsync(...args: (string | number)[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(PYTHON!, [SCRIPT, ...args.map(String)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    p.stderr.setEncoding('utf8').on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, out, err }));
  });
}

/** Moves an in-flight file's lease (of either tool) to have run out `secondsAgo` seconds ago; returns its new name. */
function expire(root: string, queue: string, name: string, secondsAgo = 3600): string {
  const renamed = `${Math.floor(Date.now() / 1000) - secondsAgo}.${name.split('.').slice(1).join('.')}`;
  fs.renameSync(join(root, queue, 'work', name), join(root, queue, 'work', renamed));
  return renamed;
}

/** The JSON of the one ready message file of a queue. */
function readyFile(root: string, queue: string): Record<string, unknown> {
  const names = ls(join(root, queue)).filter((n) => n.includes('.ddmq'));
  assert.equal(names.length, 1, `one ready file in ${queue}: ${names.join(', ')}`);
  return JSON.parse(fs.readFileSync(join(root, queue, names[0]!), 'utf8'));
}

async function tree() {
  const root = join(tempDir(), 'root');
  const broker = await Broker.open(root, { create: true, onWarning: (w) => assert.fail(w.message) });
  await broker.createQueue('q');
  return { root, broker };
}

describe('interoperability with the original tool', { skip: PYTHON === undefined && 'python3 with PyYAML not found' }, () => {
  it('the original sees our queues and consumes what we publish, keys and all', async () => {
    const { root, broker } = await tree();
    await broker.setSettings('q', { message_timeout: 900 });
    await broker.createQueue('other');
    assert.equal(original('queues', root), 'other\nq\n');
    const ours = await broker.publish('q', { task: 'a.txt' }, { priority: 5, requeueLimit: 3, extra: { headers: { h: 1 } } });
    const got = JSON.parse(original('consume', root, 'q'));
    assert.deepEqual(got.message, { task: 'a.txt' });
    assert.deepEqual([got.priority, got.id, got.queue_number, got.requeue_limit, got.headers], [5, ours.id, ours.queueNumber, 3, { h: 1 }]);
    // It reads our queue's ddmq.yaml (a mapping) and takes its lease from it.
    const expiry = Number(String(got.filename).split('.')[0]);
    assert.ok(Math.abs(expiry - (Date.now() / 1000 + 900)) < 5);
    original('ack', root, 'q', got.filename);
    assert.deepEqual(ls(join(root, 'q', 'work')), []);
  });

  it('we consume what the original publishes, in numeric order, and ack it', async () => {
    const { root, broker } = await tree();
    original('publish', root, 'q', 'low', 1000);
    original('publish', root, 'q', 'mid', 999);
    original('publish', root, 'q', 'first', 999);
    original('publish', root, 'q', 'top', 2);
    // The original sorts names as text: it would serve 1000 before 999 and 2.
    const got = await broker.consume('q', { n: 10 });
    assert.deepEqual(got.map((m) => m.text), ['top', 'mid', 'first', 'low']);
    for (const m of got) await broker.ack(m);
  });

  it("the original's clean requeues our expired in-flight files (with their claim token)", async () => {
    const { root } = await tree();
    const past = await Broker.open(root, { now: () => Date.now() - 10_000 });
    await past.publish('q', 'expired', { requeueLimit: 5 });
    const [m] = await past.consume('q', { timeout: 1 });
    assert.ok(parseInFlightName(m!.filename)!.token.length > 0);
    assert.equal(original('clean', root, 'q').trim(), '1');
    const broker = await Broker.open(root);
    const again = (await broker.consumeOne('q'))!;
    // The original's publish treats priority 0 as unset, so its requeue_prio 0 lands at 999.
    assert.deepEqual([again.text, again.requeueCounter, again.priority], ['expired', 1, 999]);
  });

  it("our clean requeues the original's expired in-flight files", async () => {
    const { root, broker } = await tree();
    original('publish', root, 'q', 'theirs');
    const theirs = JSON.parse(original('consume', root, 'q'));
    const expiredName = `1.${String(theirs.filename).split('.').slice(1).join('.')}`;
    fs.renameSync(join(root, 'q', 'work', theirs.filename), join(root, 'q', 'work', expiredName));
    const [r] = await broker.clean('q');
    assert.equal(r!.requeued, 1);
    const again = (await broker.consumeOne('q'))!;
    assert.deepEqual([again.text, again.id, again.requeueCounter], ['theirs', theirs.id, 1]);
  });

  it("a message the original is still writing in place is left for later, then taken whole", async () => {
    const { root, broker } = await tree();
    const name = `999.${String(Date.now() / 1000).replace('.', '')}.ddmq0123456789abcdef0123456789abcdef`;
    const path = join(root, 'q', name);
    fs.writeFileSync(path, '{"message": "still wri');
    assert.deepEqual(await broker.consume('q'), []);
    assert.ok(fs.existsSync(path));
    fs.writeFileSync(path, JSON.stringify({ message: 'whole', queue: 'q', priority: 999, requeue: true }));
    setMtime(path, 20_000);
    const later = await Broker.open(root);
    assert.equal((await later.consumeOne('q'))!.text, 'whole');
  });

  it('root settings we write reach queues for the original too', async () => {
    const { root, broker } = await tree();
    await broker.setSettings(undefined, { message_timeout: 1234, priority: 7 });
    const got = JSON.parse(original('publish', root, 'q', 'x'));
    assert.equal(got.priority, 7);
    const consumed = JSON.parse(original('consume', root, 'q'));
    const expiry = Number(String(consumed.filename).split('.')[0]);
    assert.ok(Math.abs(expiry - (Date.now() / 1000 + 1234)) < 5);
  });
});

/** A queue of `n` messages (payloads m00000, m00001, ...) consumed with leases that ran out an hour ago. */
async function expiredQueue(n: number): Promise<{ root: string; idOf: Map<string, string> }> {
  const root = join(tempDir(), 'root');
  const past = await Broker.open(root, { create: true, now: () => Date.now() - 3_600_000 });
  await past.createQueue('q');
  const idOf = new Map<string, string>();
  for (let i = 0; i < n; i++) {
    const p = `m${String(i).padStart(5, '0')}`;
    idOf.set(p, (await past.publish('q', p)).id);
  }
  assert.equal((await past.consume('q', { n, timeout: 1, skipCleaning: true })).length, n);
  return { root, idOf };
}

/** The ready files of a queue: payload -> the ids of its copies. */
function readyCopies(root: string): Map<string, string[]> {
  const copies = new Map<string, string[]>();
  for (const name of ls(join(root, 'q'))) {
    if (!/^\d+\.\d+\.ddmq[A-Za-z0-9]+$/.test(name)) continue;
    const msg = JSON.parse(fs.readFileSync(join(root, 'q', name), 'utf8')) as { message: string; id: string };
    copies.set(msg.message, [...(copies.get(msg.message) ?? []), msg.id]);
  }
  return copies;
}

describe('cleaners of both tools at once', { skip: PYTHON === undefined && 'python3 with PyYAML not found' }, () => {
  // scripts/interop-cleaners.mjs measures the same over many runs (figures in the README).
  it("2 of ours and 2 of the original's over 300 expired messages lose none, and ours never requeue one twice", async () => {
    const { root, idOf } = await expiredQueue(300);
    // Started within 100 ms of each other, as independent processes are: the cleaners
    // overtake each other midway instead of one following another through the listing.
    const startAt = Date.now() + 1500;
    const at = () => String(Math.round(startAt + Math.random() * 100));
    const results = await Promise.all([
      worker('clean', root, 'q', at()).then((r) => ({ kind: 'ddmq', ...r })),
      worker('clean', root, 'q', at()).then((r) => ({ kind: 'ddmq', ...r })),
      originalAsync('clean', root, 'q', '--start-at', at()).then((r) => ({ kind: 'original', ...r })),
      originalAsync('clean', root, 'q', '--start-at', at()).then((r) => ({ kind: 'original', ...r })),
    ]);
    for (const r of results.filter((r) => r.kind === 'ddmq')) assert.deepEqual([r.code, r.err], [0, ''], 'our cleaners exit cleanly');
    for (const r of results.filter((r) => r.kind === 'original' && r.code !== 0)) {
      // The original's only failure here: removing a work/ file another cleaner took.
      assert.match(r.err, /FileNotFoundError/);
    }
    const copies = readyCopies(root);
    assert.deepEqual(ls(join(root, 'q', 'work')), [], 'every expired message was handled');
    const missing = [...idOf.keys()].filter((p) => !copies.has(p));
    assert.deepEqual(missing, [], 'no message lost');
    // We keep a message's id when we requeue it; the original publishes it anew.
    const ourTwice = [...idOf].filter(([p, id]) => copies.get(p)!.filter((c) => c === id).length > 1);
    assert.deepEqual(ourTwice, [], 'our cleaners requeued no message twice');
    const ready = [...copies.values()].reduce((a, ids) => a + ids.length, 0);
    const ours = [...idOf].filter(([p, id]) => copies.get(p)!.includes(id)).length;
    const raised = results.filter((r) => r.code !== 0).length;
    console.log(`# ready ${ready} of 300; requeued by ours ${ours}, by the original's ${ready - ours}; original cleaners that raised: ${raised}`);
  });

  it('4 of ours alone over 300 expired messages requeue each exactly once, keeping its id', async () => {
    const { root, idOf } = await expiredQueue(300);
    const startAt = Date.now() + 1500;
    const at = () => String(Math.round(startAt + Math.random() * 100));
    const results = await Promise.all([1, 2, 3, 4].map(() => worker('clean', root, 'q', at())));
    for (const r of results) assert.deepEqual([r.code, r.err], [0, '']);
    const copies = readyCopies(root);
    assert.deepEqual(ls(join(root, 'q', 'work')), []);
    assert.equal(copies.size, 300);
    for (const [p, id] of idOf) assert.deepEqual(copies.get(p), [id], `${p} once, with its id`);
  });
});

describe('differences on a shared tree (the README table)', { skip: PYTHON === undefined && 'python3 with PyYAML not found' }, () => {
  it('a limit of 0: we write requeue: false, which the original drops too; requeue_limit: 0 would be "unlimited" to it', async () => {
    const { root, broker } = await tree();
    const zero = await broker.publish('q', 'zero', { requeueLimit: 0 });
    const onDisk = JSON.parse(fs.readFileSync(join(root, 'q', zero.filename), 'utf8'));
    assert.deepEqual([onDisk.requeue, onDisk.requeue_limit], [false, null]);
    // Its clean drops it at expiry...
    const [m] = await broker.consume('q');
    assert.equal(m!.requeueLimit, null);
    expire(root, 'q', m!.filename);
    assert.equal(original('clean', root, 'q').trim(), '0');
    assert.deepEqual([ls(join(root, 'q')).filter((n) => n.includes('.ddmq')), ls(join(root, 'q', 'work'))], [[], []]);
    // ...and its nack (the message decides) drops it.
    await broker.publish('q', 'zero again', { requeueLimit: 0 });
    const taken = JSON.parse(original('consume', root, 'q'));
    assert.equal(original('nack', root, 'q', taken.filename).trim(), 'deleted');
    assert.deepEqual(ls(join(root, 'q')).filter((n) => n.includes('.ddmq')), []);
    // Written the other way (as the original writes `-l 0`), it means "unlimited" to the
    // original, whose nack requeues it again and again, and "no requeue" to us.
    original('publish', root, 'q', 'theirs', '--limit', 0);
    for (let i = 1; i <= 3; i++) {
      const again = JSON.parse(original('consume', root, 'q'));
      assert.deepEqual([again.requeue_limit, again.requeue_counter], [0, i - 1]);
      assert.equal(original('nack', root, 'q', again.filename).trim(), 'requeued');
    }
    const ours = (await broker.consumeOne('q'))!;
    assert.deepEqual([ours.text, ours.requeueLimit], ['theirs', 0]);
    assert.equal((await broker.nack(ours)).action, 'dropped');
  });

  it('a requeue priority of 0: we write requeue: true and requeue_priority: 0, which the original requeues (requeue: 0 it would drop)', async () => {
    const { root, broker } = await tree();
    const top = await broker.publish('q', 'top', { requeuePrio: 0 });
    const onDisk = JSON.parse(fs.readFileSync(join(root, 'q', top.filename), 'utf8'));
    assert.deepEqual([onDisk.requeue, onDisk.requeue_priority], [true, 0]);
    const [m] = await broker.consume('q');
    assert.equal(m!.requeue, 0, 'we read it back as a requeue priority of 0');
    expire(root, 'q', m!.filename);
    assert.equal(original('clean', root, 'q').trim(), '1');
    // Requeued, not dropped; at 999, as its publish reads priority 0 as unset; our key is gone.
    const again = readyFile(root, 'q');
    assert.deepEqual([again.message, again.priority, again.requeue, 'requeue_priority' in again], ['top', 999, true, false]);
    // Written as requeue: 0 (the original's library takes it), the original drops it and we requeue it at 0.
    const { root: root2, broker: broker2 } = await tree();
    original('publish', root2, 'q', 'zero', '--requeue', 0);
    const theirs = JSON.parse(original('consume', root2, 'q'));
    assert.equal(theirs.requeue, 0);
    const expiredName = expire(root2, 'q', theirs.filename);
    const copy = join(tempDir(), 'copy');
    fs.copyFileSync(join(root2, 'q', 'work', expiredName), copy);
    assert.equal(original('clean', root2, 'q').trim(), '0');
    assert.deepEqual(ls(join(root2, 'q')).filter((n) => n.includes('.ddmq')), [], 'the original dropped it');
    fs.copyFileSync(copy, join(root2, 'q', 'work', expiredName));
    assert.equal((await broker2.clean('q'))[0]!.requeued, 1);
    assert.equal((await broker2.consumeOne('q'))!.priority, 0);
  });
});
