/**
 * Nothing outside the root, under races: while the per-message calls run (publish, with
 * and without a delay, consume, nack into delayed/, ack), another process swaps a folder
 * of the queue with a link to a canary outside the root, atomically and over and over
 * (test/fixtures/swap.py). In a tree others can write (here: the queue folder is group
 * writable, as with group_shared), and in any tree with `pinFolders`, the calls work
 * through folders kept pinned: the canary must keep every byte, inode, mode and mtime,
 * and every message a call reported published must be found in the root at the end.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Broker, isDdmqError } from '../src/index.js';
import { brokerInternals } from '../src/store/internals.js';
import { REPO, snapshot, tempDir } from './helpers.js';

const SWAP = join(REPO, 'test', 'fixtures', 'swap.py');
const canSwap = process.platform === 'linux';


function swapper(a: string, b: string, seconds: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const p = spawn('python3', [SWAP, a, b, String(seconds), '300', '700'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    p.stderr.setEncoding('utf8').on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(Number(out)) : reject(new Error(`swap.py: ${err}`))));
  });
}

/** Refusals a call may meet in the middle of a swap: a link found (UNSAFE_PATH), or a name gone for a moment. */
function expected(err: unknown): boolean {
  return isDdmqError(err) && (err.code === 'UNSAFE_PATH' || err.code === 'QUEUE_MISSING' || err.code === 'NOT_IN_FLIGHT' || (err.code === 'IO' && err.osCode === 'ENOENT'));
}

type Place = 'q' | 'q/work' | 'q/delayed';

async function race(place: Place, mode: 'exposed' | 'pinFolders') {
  const dir = tempDir('ddmq-races-');
  const root = join(dir, 'root');
  const canary = join(dir, 'canary');
  fs.mkdirSync(join(canary, 'work'), { recursive: true });
  fs.mkdirSync(join(canary, 'delayed'), { recursive: true });
  fs.writeFileSync(join(canary, 'ddmq.yaml'), 'priority: 1\n');
  fs.writeFileSync(join(canary, 'secret.txt'), 'secret');
  const setup = await Broker.open(root, { create: true });
  await setup.createQueue('q', { retry_delay: 1, group_shared: mode === 'exposed' });
  fs.mkdirSync(join(root, 'q', 'delayed'));
  if (mode === 'exposed') fs.chmodSync(join(root, 'q'), 0o2775); // a group can write it
  const before = snapshot(canary);
  const link = join(dir, 'link');
  fs.symlinkSync(place === 'q' ? canary : join(canary, place.slice(2)), link);

  const broker = await Broker.open(root, { pinFolders: mode === 'pinFolders', listingIntervalMs: 0, onWarning: () => {} });
  let published = 0;
  let acked = 0;
  let refused = 0;
  const unexpected: unknown[] = [];
  const attempt = async (fn: () => Promise<unknown>) => {
    try {
      await fn();
      return true;
    } catch (err) {
      if (!expected(err)) unexpected.push(err);
      refused++;
      return false;
    }
  };
  // The attacker also removes work/ and delayed/ of the real queue folder when they are empty,
  // so that ddmq has to make them again in the middle of the swaps. (Through a descriptor
  // of the real folder: never the canary's.)
  const realQueue = fs.openSync(join(root, 'q'), fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  // The calls run for as long as the swapper does (it may start late on a loaded machine,
  // and it cannot swap a work/ that no call makes again).
  let swapping = true;
  const swaps = swapper(join(root, place), link, 2);
  const done = () => (swapping = false);
  swaps.then(done, done);
  for (let i = 0; swapping; i++) {
    if (i % 5 === 0) {
      for (const sub of ['work', 'delayed']) {
        try {
          fs.rmdirSync(`/proc/${process.pid}/fd/${realQueue}/${sub}`);
        } catch {
          // not empty, a link just now, or gone already
        }
      }
    }
    if (await attempt(() => broker.publish('q', `m${i}`, i % 5 === 0 ? { delay: 1 } : {}))) published++;
    if (i % 2 === 0) continue;
    let taken: Awaited<ReturnType<Broker['consume']>> = [];
    await attempt(async () => (taken = await broker.consume('q', { skipCleaning: true })));
    for (const m of taken) {
      if (i % 7 === 0) await attempt(() => broker.nack(m));
      else if (await attempt(() => broker.ack(m))) acked++;
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  const n = await swaps;
  fs.closeSync(realQueue);
  // With the folders back in place, the same calls all work again, with no refusal at all
  // (a refusal during the swaps must come from the swaps, not from the pinning).
  for (let i = 0; i < 20; i++) {
    await broker.publish('q', `after ${i}`, i % 2 === 0 ? { delay: 1 } : {});
    published++;
    const [m] = await broker.consume('q', { skipCleaning: true });
    if (i % 3 === 0) await broker.nack(m!);
    else {
      await broker.ack(m!);
      acked++;
    }
  }
  broker.close();
  assert.ok(n > 100, `the swapper swapped (${n} times)`);
  assert.deepEqual(snapshot(canary), before, 'the canary outside the root is untouched');
  assert.deepEqual(unexpected, []);
  // Every message a call reported published is in the root: ready, in flight, delayed, or acked.
  const fresh = await Broker.open(root);
  const [c] = await fresh.counts('q');
  assert.equal(c!.ready + c!.inFlight + c!.delayed + acked, published, `published ${published}, acked ${acked}, left ${JSON.stringify(c)}`);
  return { published, refused, swaps: n };
}

describe('nothing outside the root under races: a folder swapped for a link while the per-message calls run', { skip: !canSwap && 'needs Linux (renameat2)' }, () => {
  for (const mode of ['exposed', 'pinFolders'] as const) {
    for (const place of ['q', 'q/work', 'q/delayed'] as const) {
      it(`${place} swapped, ${mode === 'exposed' ? 'in a tree a group can write' : 'in a private tree with pinFolders'}`, async () => {
        await race(place, mode);
      });
    }
  }
});

describe('group access is never given through a link', () => {
  it('a folder swapped for a link right after ddmq made it: refused, and the link target keeps its mode', async () => {
    const { patchFs } = await import('./helpers.js');
    const dir = tempDir('ddmq-races-');
    const root = join(dir, 'root');
    const canary = join(dir, 'canary');
    fs.mkdirSync(canary, { mode: 0o755 });
    fs.chmodSync(canary, 0o755);
    const broker = await Broker.open(root, { create: true });
    await broker.setSettings(undefined, { group_shared: true });
    await broker.createQueue('q');
    const delayed = join(root, 'q', 'delayed');
    const restore = patchFs('mkdirSync', (original) =>
      ((path: fs.PathLike, options?: fs.MakeDirectoryOptions) => {
        const made = original(path, options as never);
        if (fs.realpathSync(String(path)) === delayed) {
          // The attacker's swap, between the mkdir and the chmod.
          fs.rmdirSync(delayed);
          fs.symlinkSync(canary, delayed);
        }
        return made;
      }) as typeof fs.mkdirSync,
    );
    try {
      await assert.rejects(broker.publish('q', 'later', { delay: 60 }), (e) => isDdmqError(e, 'UNSAFE_PATH'));
    } finally {
      restore();
    }
    assert.equal(fs.statSync(canary).mode & 0o7777, 0o755, 'no group access given to the target');
    assert.deepEqual(fs.readdirSync(canary), []);
  });
});

describe('which trees pin the per-message calls', () => {
  async function pinnedAfter(prepare: (root: string) => void): Promise<boolean> {
    const root = join(tempDir('ddmq-exposed-'), 'root');
    const setup = await Broker.open(root, { create: true });
    await setup.createQueue('q');
    fs.chmodSync(root, 0o755);
    fs.chmodSync(join(root, 'q'), 0o755);
    prepare(root);
    const broker = await Broker.open(root);
    await broker.publish('q', 'x');
    const pinned = (await brokerInternals(broker).queue('q')).pinned;
    broker.close();
    return pinned;
  }

  it('a tree only this user can write keeps plain paths; any write access for others, sticky or not, pins', async () => {
    assert.equal(await pinnedAfter(() => {}), false, 'private');
    assert.equal(await pinnedAfter((r) => fs.chmodSync(join(r, 'q'), 0o775)), true, 'group-writable queue folder');
    assert.equal(await pinnedAfter((r) => fs.chmodSync(join(r, 'q'), 0o3770)), true, 'group-writable and sticky: others can still make delayed/ first');
    assert.equal(await pinnedAfter((r) => fs.chmodSync(r, 0o1777)), true, 'a world-writable sticky root');
    assert.equal(await pinnedAfter((r) => fs.mkdirSync(join(r, 'q', 'delayed'), { mode: 0o777 }) ?? fs.chmodSync(join(r, 'q', 'delayed'), 0o777)), true, 'a subfolder others can write');
  });

  it('a queue folder owned by another user pins', { skip: process.getuid?.() !== 0 && 'needs root to give a folder away' }, async () => {
    assert.equal(await pinnedAfter((r) => fs.chownSync(join(r, 'q'), 65534, 65534)), true);
  });
});

describe('pinning again and again', { skip: !canSwap && 'needs /proc' }, () => {
  it('folders pinned before are closed once a call is done with them: an attacker who removes work/ over and over cannot run us out of descriptors', async () => {
    const root = join(tempDir('ddmq-repin-'), 'root');
    const broker = await Broker.open(root, { create: true, pinFolders: true });
    await broker.createQueue('q', { dead_letter: 'dead', retry_delay: 0 });
    const fds = () => fs.readdirSync('/proc/self/fd').length;
    await broker.publish('q', 'warm up');
    await broker.ack((await broker.consumeOne('q'))!);
    const before = fds();
    for (let i = 0; i < 300; i++) {
      fs.rmdirSync(join(root, 'q', 'work')); // empty: each consume has to make it and pin it again
      await broker.publish('q', `m${i}`, { requeueLimit: 0 });
      const m = (await broker.consumeOne('q'))!;
      if (i % 2 === 0) await broker.ack(m);
      else assert.equal((await broker.nack(m)).action, 'dead-lettered'); // holds its folders across an await
      await new Promise((resolve) => setImmediate(resolve));
    }
    await new Promise((resolve) => setImmediate(resolve));
    assert.ok(fds() - before < 20, `${fds() - before} more descriptors open after 300 pins`);
    assert.equal((await broker.counts('dead'))[0]!.ready, 150);
    broker.close();
  });
});
