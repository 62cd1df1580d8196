/**
 * SPEC §7: a tree written by us is usable by the original Python tool and the other way
 * round. The original is re-enacted by fixtures/original_ops.py (its file operations,
 * step by step), run with a Python that has PyYAML.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Broker, parseInFlightName } from '../src/index.js';
import { ls, REPO, setMtime, tempDir } from './helpers.js';

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

function original(...args: (string | number)[]): string {
  const r = spawnSync(PYTHON!, [SCRIPT, ...args.map(String)], { encoding: 'utf8' });
  assert.equal(r.status, 0, `original_ops.py ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
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
