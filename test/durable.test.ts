/**
 * Durable writes (fsync on): the order of the file-system calls that makes a message
 * survive a power loss, and the sharing of syncs between a batch's files and between
 * concurrent callers (group commit). The calls are recorded by replacing node:fs's
 * functions for the library; what is asserted is the order in which they happened.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { basename, join } from 'node:path';
import { describe, it } from 'node:test';
import { Broker } from '../src/index.js';
import { assertDurable, type Event, recordCalls } from './fs-calls.js';
import { CLI, patchFs, tempDir } from './helpers.js';

/** The removal of a message file (the in-flight one a nack replaces), not of a temporary file. */
const isMessageRemoved = (e: Event) => e.op === 'unlink' && basename(e.path).includes('.ddmq') && !basename(e.path).startsWith('.tmp-');

async function setup(settings: Record<string, unknown> = {}) {
  const root = join(tempDir(), 'root');
  const broker = await Broker.open(root, { create: true, fsync: true });
  await broker.createQueue('q', settings);
  return { root, broker };
}

describe('durable writes (fsync on)', () => {
  it('publish: the data synced, then the rename, then the folder synced, then it returns', async () => {
    const { broker } = await setup();
    const rec = recordCalls();
    try {
      const msg = await broker.publish('q', 'hello');
      rec.mark('publish');
      assertDurable(rec.events, msg.filename, 'publish');
    } finally {
      rec.stop();
    }
  });

  it('publish with a delay: the same order into delayed/', async () => {
    const { root, broker } = await setup();
    const rec = recordCalls();
    try {
      await broker.publish('q', 'later', { delay: 60 });
      rec.mark('publish');
      const [name] = fs.readdirSync(join(root, 'q', 'delayed'));
      assertDurable(rec.events, name!, 'publish');
    } finally {
      rec.stop();
    }
  });

  it('publishMany: every file synced before any rename, one folder sync per group of 512, all before it returns', async () => {
    const { root, broker } = await setup();
    const rec = recordCalls();
    try {
      assert.equal(await broker.publishMany('q', Array.from({ length: 1000 }, (_, i) => i)), 1000);
      rec.mark('publishMany');
      const names = fs.readdirSync(join(root, 'q')).filter((n) => n.includes('.ddmq'));
      assert.equal(names.length, 1000);
      for (const name of names) assertDurable(rec.events, name, 'publishMany');
      const renames = rec.events.flatMap((e, i) => (e.op === 'rename' ? [i] : []));
      const syncs = rec.events.flatMap((e, i) => (e.op === 'datasync-done' ? [i] : []));
      // Group commit: the first group's 512 data syncs all end before its first rename.
      assert.ok(syncs[511]! < renames[0]!, 'the first 512 files are synced together, then renamed');
      assert.equal(rec.events.filter((e) => e.op === 'dirsync-start').length, 2, 'the folder is synced once per group');
    } finally {
      rec.stop();
    }
  });

  it('publishMany stopped by a body that cannot be written, or by its iterator, has the bodies before it published', async () => {
    const { broker } = await setup();
    await assert.rejects(broker.publishMany('q', [1, 2, 10n, 4]), /cannot be written as JSON/);
    function* failing() {
      yield* Array.from({ length: 600 }, (_, i) => i); // a whole group of 512, and 88 more
      throw new Error('the iterator failed');
    }
    await assert.rejects(broker.publishMany('q', failing()), /the iterator failed/);
    const got = await broker.consume('q', { n: 1000 });
    assert.deepEqual(got.map((m) => m.message), [1, 2, ...Array.from({ length: 600 }, (_, i) => i)]);
  });

  it('a data sync that fails (EIO) in a group: the files before it are published, the rest removed, no temporary file left', async () => {
    const { root, broker } = await setup();
    let calls = 0;
    const restore = patchFs('fdatasync', (orig) => ((fd: number, cb: fs.NoParamCallback) => {
      if (++calls === 4) return setImmediate(() => cb(Object.assign(new Error('EIO: i/o error'), { code: 'EIO' })));
      orig(fd, cb);
    }) as typeof fs.fdatasync);
    try {
      await assert.rejects(broker.publishMany('q', ['m1', 'm2', 'm3', 'm4', 'm5']), /EIO/);
    } finally {
      restore();
    }
    assert.deepEqual(fs.readdirSync(join(root, 'q')).filter((n) => n.startsWith('.tmp-')), [], 'no temporary file left');
    assert.deepEqual((await broker.consume('q', { n: 10 })).map((m) => m.message), ['m1', 'm2', 'm3']);
  });

  it('pinned folders pinned anew while a group is staged (delayed/ made, work/ removed meanwhile) stay open until it is committed', async () => {
    const root = join(tempDir(), 'root');
    const broker = await Broker.open(root, { create: true, fsync: true, pinFolders: true });
    await broker.createQueue('q');
    await broker.publish('q', 'ready-one');
    fs.rmSync(join(root, 'q', 'delayed'), { recursive: true, force: true });
    // Slow data syncs, so that another call pins again while they run.
    const restore = patchFs('fdatasync', (orig) => ((fd: number, cb: fs.NoParamCallback) => orig(fd, (err) => setTimeout(() => cb(err), 100))) as typeof fs.fdatasync);
    try {
      const published = broker.publishMany('q', ['a', 'b', 'c'], { delay: 60 });
      await new Promise((r) => setTimeout(r, 30));
      fs.rmdirSync(join(root, 'q', 'work'));
      await broker.consume('q'); // finds work/ gone and pins again, while the syncs run
      assert.equal(await published, 3);
    } finally {
      restore();
    }
    const delayed = fs.readdirSync(join(root, 'q', 'delayed'));
    assert.equal(delayed.filter((n) => n.includes('.ddmq')).length, 3);
    assert.deepEqual(delayed.filter((n) => n.startsWith('.tmp-')), []);
  });

  it('64 publishes at once share their folder syncs, each returning only after a sync that began after its rename', async () => {
    const { broker } = await setup();
    const rec = recordCalls();
    try {
      const msgs = await Promise.all(
        Array.from({ length: 64 }, async (_, i) => {
          const msg = await broker.publish('q', i);
          rec.mark(`publish ${i}`);
          return msg;
        }),
      );
      msgs.forEach((msg, i) => assertDurable(rec.events, msg.filename, `publish ${i}`));
      const dirSyncs = rec.events.filter((e) => e.op === 'dirsync-start').length;
      assert.ok(dirSyncs <= 8, `64 publishes shared ${dirSyncs} folder syncs`);
    } finally {
      rec.stop();
    }
  });

  it('nack: the requeued file is on disk (synced, renamed, folder synced) before the in-flight file is removed', async () => {
    for (const retry_delay of [0, 30]) {
      const { root, broker } = await setup({ retry_delay });
      await broker.publish('q', 'x');
      const [msg] = await broker.consume('q');
      const rec = recordCalls();
      try {
        await broker.nack(msg!);
        rec.mark('nack');
        const folder = retry_delay > 0 ? join(root, 'q', 'delayed') : join(root, 'q');
        const [name] = fs.readdirSync(folder).filter((n) => n.includes('.ddmq'));
        const { end } = assertDurable(rec.events, name!, 'nack');
        const removed = rec.events.findIndex(isMessageRemoved);
        const dirSyncDone = rec.events.findLastIndex((e, i) => e.op === 'dirsync-done' && i < end);
        assert.ok(removed > dirSyncDone && removed < end, `retry_delay ${retry_delay}: the old file goes after the new one is durable`);
      } finally {
        rec.stop();
      }
    }
  });

  it('dead-lettering: the dead letter is on disk before the in-flight file is removed', async () => {
    const { root, broker } = await setup({ requeue_limit: 0, dead_letter: 'dlq' });
    await broker.createQueue('dlq');
    await broker.publish('q', 'x');
    const [msg] = await broker.consume('q');
    const rec = recordCalls();
    try {
      const result = await broker.nack(msg!, { error: 'boom' });
      rec.mark('nack');
      assert.equal(result.action, 'dead-lettered');
      const [name] = fs.readdirSync(join(root, 'dlq')).filter((n) => n.includes('.ddmq'));
      const { end } = assertDurable(rec.events, name!, 'nack');
      const removed = rec.events.findIndex(isMessageRemoved);
      const dirSyncDone = rec.events.findLastIndex((e, i) => e.op === 'dirsync-done' && i < end);
      assert.ok(removed > dirSyncDone && removed < end, 'the in-flight file goes after the dead letter is durable');
    } finally {
      rec.stop();
    }
  });
});

const hasStrace = spawnSync('strace', ['-V']).status === 0;

describe('durable writes by the command (traced with strace)', () => {
  // CI installs strace (.ci/run); elsewhere the test is skipped when it is missing.
  it('ddmq publish --file with fsync: each file synced before its rename, the folder after, by more than 4 threads at once', { skip: !hasStrace && process.env.CI !== 'true' && 'strace is not installed' }, async () => {
    const dir = tempDir();
    const root = join(dir, 'root');
    const broker = await Broker.open(root, { create: true });
    await broker.createQueue('q', { fsync: true });
    broker.close();
    const lines = join(dir, 'lines.txt');
    fs.writeFileSync(lines, Array.from({ length: 600 }, (_, i) => `task ${i}`).join('\n') + '\n');
    const log = join(dir, 'strace.log');
    const r = spawnSync('strace', ['-f', '-y', '-qq', '-e', 'trace=fdatasync,fsync,rename,renameat,renameat2', '-o', log, process.execPath, CLI, 'publish', root, 'q', '--file', lines], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'published 600 messages to q\n');
    // Lines are "TID call(args) = result", or split in "<unfinished ...>" and "<... call resumed>".
    const synced = new Map<string, number>(); // temporary file's name -> line where its data sync ended
    const pending = new Map<string, string>(); // thread -> file whose sync it started
    const renamed: { from: string; at: number }[] = [];
    const folderSyncs: number[] = [];
    const syncThreads = new Set<string>();
    fs.readFileSync(log, 'utf8').split('\n').forEach((line, at) => {
      const tid = line.split(/\s+/)[0]!;
      let m = /fdatasync\(\d+<([^>]+)>(.*)/.exec(line);
      if (m !== null) {
        syncThreads.add(tid);
        // By name: temporary names are unique, and pinned folders show as /proc/PID/fd/N paths.
        if (m[2]!.includes('unfinished')) pending.set(tid, basename(m[1]!));
        else if (/= 0$/.test(m[2]!)) synced.set(basename(m[1]!), at);
        return;
      }
      if (/<\.\.\. fdatasync resumed>.*= 0$/.test(line)) {
        synced.set(pending.get(tid)!, at);
        return;
      }
      m = /rename(?:at2?)?\(.*?"([^"]+)",.*?"([^"]+)".*= 0$/.exec(line);
      if (m !== null && basename(m[1]!).startsWith('.tmp-')) renamed.push({ from: m[1]!, at });
      if (/^\d+\s+(<\.\.\. )?fsync/.test(line) && (line.includes(`<${join(root, 'q')}>`) || line.includes('fsync resumed'))) folderSyncs.push(at);
    });
    assert.equal(renamed.length, 600, 'every message renamed into place');
    for (const { from, at } of renamed) assert.ok((synced.get(basename(from)) ?? Infinity) < at, `${basename(from)}: synced before its rename (${synced.get(basename(from))} < ${at}) ${fs.readFileSync(log, 'utf8').split('\n').filter((l) => l.includes(basename(from))).join(' / ')}`);
    const lastRename = Math.max(...renamed.map((x) => x.at));
    assert.ok(folderSyncs.some((at) => at > lastRename), 'the queue folder synced after the last rename');
    assert.ok(syncThreads.size > 4, `data syncs ran on ${syncThreads.size} threads (libuv's default pool has 4)`);
  });
});
