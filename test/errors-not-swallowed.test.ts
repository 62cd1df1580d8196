/**
 * Errors that must not be swallowed: an existence check that fails (EACCES, a passing
 * ESTALE) is not "missing"; a settings file is created only where there is none; and a
 * queue that cannot be handled does not stop the others in a call over every queue.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Broker, isDdmqError } from '../src/index.js';
import { CLI, errno, patchFs, tempDir } from './helpers.js';

async function setup() {
  const root = join(tempDir(), 'root');
  let now = Date.now();
  const broker = await Broker.open(root, { create: true, now: () => now });
  return { root, broker, advance: (ms: number) => (now += ms) };
}

/** Makes stat and lstat of paths ending in `suffix` fail with `code`, `times` times. */
function failLstat(suffix: string, code: string, times = Infinity): () => void {
  let left = times;
  const failing = <F extends typeof fs.lstatSync>(original: F) =>
    ((path: fs.PathLike, options?: fs.StatSyncOptions) => {
      if (String(path).endsWith(suffix) && left-- > 0) throw errno(code);
      return original(path, options as never);
    }) as F;
  const restores = [patchFs('lstatSync', failing), patchFs('statSync', failing)];
  return () => restores.forEach((restore) => restore());
}

describe('existence checks follow the file-system error policy', () => {
  it('EACCES looking up a queue is an IO error, not "missing": a dead letter never recreates (and empties) its queue', async () => {
    const { root, broker } = await setup();
    await broker.createQueue('q', { dead_letter: 'dead', retry_delay: 0 });
    await broker.createQueue('dead', { message_timeout: 77 });
    const deadYaml = join(root, 'dead', 'ddmq.yaml');
    const before = fs.readFileSync(deadYaml, 'utf8');
    await broker.publish('q', 'x', { requeueLimit: 0 });
    const m = (await broker.consumeOne('q'))!;
    const fresh = await Broker.open(root);
    const restore = failLstat(join('dead', 'ddmq.yaml'), 'EACCES');
    try {
      await assert.rejects(fresh.nack(m.queue, m.filename), (e) => isDdmqError(e, 'IO') && e.osCode === 'EACCES');
    } finally {
      restore();
    }
    assert.equal(fs.readFileSync(deadYaml, 'utf8'), before, "the dead-letter queue's settings are untouched");
    assert.equal((await fresh.counts('q'))[0]!.inFlight, 1, 'the message stays in flight, for a later clean');
    assert.equal(await fresh.queueExists('dead'), true);
  });

  it('a passing ESTALE is tried again, not read as "missing"', async () => {
    const { broker } = await setup();
    await broker.createQueue('q');
    const restore = failLstat(join('q', 'ddmq.yaml'), 'ESTALE', 2);
    try {
      assert.equal(await broker.queueExists('q'), true);
      assert.equal(await broker.createQueue('q'), false);
    } finally {
      restore();
    }
  });

  it('a create never replaces a ddmq.yaml, even when it looked missing a moment before', async () => {
    const { root, broker } = await setup();
    await broker.createQueue('q', { priority: 3 });
    const yaml = join(root, 'q', 'ddmq.yaml');
    const before = fs.readFileSync(yaml, 'utf8');
    // The look-up says "missing" (another client made the queue just after it).
    const restore = failLstat(join('q', 'ddmq.yaml'), 'ENOENT', 1);
    try {
      assert.equal(await broker.createQueue('q'), false);
    } finally {
      restore();
    }
    assert.equal(fs.readFileSync(yaml, 'utf8'), before);
    assert.deepEqual(fs.readdirSync(join(root, 'q')).filter((n) => n.startsWith('.tmp-')), [], 'no temporary file left');
  });

  it('the root ddmq.yaml is created only where there is none', async () => {
    const { root } = await setup();
    fs.writeFileSync(join(root, 'ddmq.yaml'), 'priority: 9\n');
    const restore = failLstat(join('root', 'ddmq.yaml'), 'ENOENT', 1);
    try {
      await Broker.open(root, { create: true });
    } finally {
      restore();
    }
    assert.equal(fs.readFileSync(join(root, 'ddmq.yaml'), 'utf8'), 'priority: 9\n');
  });
});

describe('one bad queue does not stop the others', () => {
  for (const [what, spoil] of [
    ['a ddmq.yaml with priority: -3', (dir: string) => fs.writeFileSync(join(dir, 'ddmq.yaml'), 'priority: -3\n')],
    ['a ddmq.yaml that is a link', (dir: string) => {
      fs.unlinkSync(join(dir, 'ddmq.yaml'));
      fs.symlinkSync('/etc/hostname', join(dir, 'ddmq.yaml'));
    }],
    ['a work/ that is a link', (dir: string) => {
      fs.rmSync(join(dir, 'work'), { recursive: true });
      fs.symlinkSync('/tmp', join(dir, 'work'));
    }],
  ] as const) {
    it(`clean and view of every queue, with ${what} in one of them`, async () => {
      const { root, broker, advance } = await setup();
      for (const q of ['a', 'bad', 'z']) await broker.createQueue(q, { expiry_grace: 0 });
      for (const q of ['a', 'z']) {
        await broker.publish(q, `expired in ${q}`, { lease: 1 });
        await broker.consumeOne(q);
      }
      spoil(join(root, 'bad'));
      advance(5000);
      const results = await broker.clean();
      assert.deepEqual(results.map((r) => [r.queue, r.requeued, r.error?.code]), [
        ['a', 1, undefined],
        ['bad', 0, results[1]!.error!.code],
        ['z', 1, undefined],
      ]);
      assert.ok(['INVALID_SETTING', 'UNSAFE_PATH'].includes(results[1]!.error!.code));
      const counts = await broker.counts();
      assert.deepEqual(counts.map((c) => [c.queue, c.ready, c.error !== undefined]), [['a', 1, false], ['bad', 0, true], ['z', 1, false]]);

      for (const command of ['view', 'clean']) {
        const r = spawnSync(process.execPath, [CLI, command, root, '--format', 'json'], { encoding: 'utf8' });
        assert.equal(r.status, 7, `${command}: ${r.stderr}`);
        assert.deepEqual(r.stdout.trim().split('\n').map((l) => JSON.parse(l).queue), ['a', 'z']);
        assert.match(r.stderr, /bad/);
        assert.doesNotMatch(r.stderr, /\n\s+at /);
      }
      // Only the bad queue named: its own error's exit code.
      assert.equal(spawnSync(process.execPath, [CLI, 'view', root, 'bad'], { encoding: 'utf8' }).status, 2);
    });
  }
});
