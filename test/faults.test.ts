/**
 * Faults of the file system under the queue: a full disk, a read-only tree, folders
 * deleted while clients run. Each fails clearly and loses nothing. The mounts need
 * root (CI runs as root); elsewhere those tests are skipped, saying why.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Broker, type DdmqError, isDdmqError } from '../src/index.js';
import { CLI, ls, tempDir } from './helpers.js';

const isRoot = process.getuid?.() === 0;
const needsRoot = isRoot ? false : 'needs root to mount a tmpfs and a read-only bind mount';
if (!isRoot && process.env.CI) throw new Error('CI must run the fault tests as root');

const code = (c: string, os?: string) => (e: unknown) => isDdmqError(e) && e.code === c && (os === undefined || e.osCode === os);

function ddmq(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** A new folder with something mounted on it; unmounted, then removed, when the tests end. */
function mounted(args: string[]): string {
  const dir = fs.mkdtempSync(join(tmpdir(), 'ddmq-mnt-'));
  execFileSync('mount', [...args, dir]);
  after(() => {
    spawnSync('umount', ['-l', dir]);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** Every message file in a folder parses whole. */
function allWhole(dir: string, expectLength: number): number {
  let n = 0;
  for (const name of ls(dir).filter((f) => f.includes('.ddmq'))) {
    const data = JSON.parse(fs.readFileSync(join(dir, name), 'utf8'));
    assert.equal(data.message.length, expectLength, name);
    n++;
  }
  return n;
}

describe('a full disk', { skip: needsRoot }, () => {
  it('publish fails clearly with ENOSPC, leaves no partial message or temp file, and works once space is freed', async () => {
    const mnt = mounted(['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs']);
    const root = join(mnt, 'root');
    const broker = await Broker.open(root, { create: true });
    await broker.createQueue('q');
    fs.writeFileSync(join(mnt, 'filler'), Buffer.alloc(200 * 1024));
    const body = 'm'.repeat(8000);
    let published = 0;
    let failure: unknown;
    for (let i = 0; i < 1000 && failure === undefined; i++) {
      try {
        await broker.publish('q', body);
        published++;
      } catch (err) {
        failure = err;
      }
    }
    assert.ok(published > 10, `published ${published} before the disk filled`);
    assert.ok(code('IO', 'ENOSPC')(failure), String(failure));
    assert.match((failure as Error).message, /no space left on the device \(ENOSPC\)/);
    const dir = join(root, 'q');
    assert.equal(allWhole(dir, 8000), published, 'every message file that exists is whole');
    assert.deepEqual(ls(dir).filter((n) => n.startsWith('.tmp-')), [], 'no temporary file left behind');

    const r = ddmq('publish', root, 'q', body);
    assert.equal(r.code, 4);
    assert.match(r.err, /no space left/);

    fs.unlinkSync(join(mnt, 'filler'));
    await broker.publish('q', body);
    const got = await broker.consume('q', { n: 10_000 });
    assert.equal(got.length, published + 1);
    assert.ok(got.every((m) => m.text === body));
  });

  it('a nack that cannot write its requeue keeps the message, and a later clean requeues it', async () => {
    const mnt = mounted(['-t', 'tmpfs', '-o', 'size=512k', 'tmpfs']);
    const root = join(mnt, 'root');
    let now = Date.now();
    const warnings: DdmqError[] = [];
    const broker = await Broker.open(root, { create: true, now: () => now, onWarning: (w) => warnings.push(w) });
    await broker.createQueue('q');
    await broker.publish('q', 'precious');
    const [m] = await broker.consume('q');
    // Fill the disk to the last block.
    const fd = fs.openSync(join(mnt, 'filler'), 'w');
    try {
      for (;;) fs.writeSync(fd, Buffer.alloc(4096));
    } catch {
      fs.closeSync(fd);
    }
    await assert.rejects(broker.nack(m!), code('IO', 'ENOSPC'));
    assert.equal(ls(join(root, 'q', 'work')).length, 1, 'still in flight, under its claim');
    // consume's own clean fails too, as a warning, not an error.
    now += 200_000;
    assert.deepEqual(await broker.consume('q'), []);
    assert.ok(warnings.some((w) => w.osCode === 'ENOSPC'));
    fs.unlinkSync(join(mnt, 'filler'));
    // That failed clean had claimed it again (for 60 s): a clean after that claim runs out takes it.
    assert.equal((await broker.clean('q'))[0]!.requeued, 0);
    now += 100_000;
    const [r] = await broker.clean('q');
    assert.equal(r!.requeued, 1);
    assert.equal((await broker.consumeOne('q', { skipCleaning: true }))!.text, 'precious');
  });
});

describe('a read-only tree', { skip: needsRoot }, () => {
  it('every command that writes fails clearly with exit 4, and nothing is lost', async () => {
    const rw = join(tempDir(), 'root');
    const broker = await Broker.open(rw, { create: true, now: () => Date.now() - 100_000 });
    await broker.createQueue('q');
    for (const t of ['a', 'b', 'c']) await broker.publish('q', t);
    const [held] = await broker.consume('q', { lease: 1 }); // expired: clean would requeue it
    const before = JSON.stringify((await broker.counts('q'))[0]);
    const ro = mounted(['--bind', rw]);
    execFileSync('mount', ['-o', 'remount,bind,ro', ro]);

    assert.equal(ddmq('view', ro).code, 0, 'reading works');
    const writes: string[][] = [
      ['publish', ro, 'q', 'x'],
      ['consume', ro, 'q'],
      ['consume', ro, 'q', '-C'],
      ['ack', ro, 'q', held!.filename],
      ['nack', ro, 'q', held!.filename],
      ['del_msg', ro, 'q', held!.filename],
      ['purge', ro, 'q'],
      ['clean', ro, 'q'],
      ['create', ro, 'newq'],
      ['delete', ro, 'q'],
      ['settings', ro, 'q', '--set', 'priority=1'],
    ];
    for (const args of writes) {
      const r = ddmq(...args);
      assert.equal(r.code, 4, `${args[0]}: ${r.err}`);
      assert.match(r.err, /read-only \(EROFS\)/, args[0]);
    }
    assert.equal(JSON.stringify((await broker.counts('q'))[0]), before, 'nothing changed');
    assert.ok(fs.existsSync(join(rw, 'q', 'work', held!.filename)));
  });
});

describe('folders deleted while clients run', () => {
  it('a deleted queue gives QUEUE_MISSING at once, to every call; with create it is made again', async () => {
    const root = join(tempDir(), 'root');
    const broker = await Broker.open(root, { create: true });
    await broker.createQueue('q');
    await broker.publish('q', 'a');
    await broker.publish('q', 'b');
    const [held] = await broker.consume('q');
    const strict = await Broker.open(root);
    assert.equal((await strict.counts('q'))[0]!.ready, 1); // strict knows the queue before it goes
    fs.rmSync(join(root, 'q'), { recursive: true });
    const started = Date.now();
    await assert.rejects(strict.consume('q'), code('QUEUE_MISSING'));
    await assert.rejects(strict.publish('q', 'x'), code('QUEUE_MISSING'));
    await assert.rejects(strict.ack(held!), code('QUEUE_MISSING'));
    await assert.rejects(strict.clean('q'), code('QUEUE_MISSING'));
    await assert.rejects(strict.counts('q'), code('QUEUE_MISSING'));
    await assert.rejects(strict.purge('q'), code('QUEUE_MISSING'));
    assert.ok(Date.now() - started < 2000, 'errors come at once, no retry loop');
    const r = ddmq('consume', root, 'q');
    assert.equal(r.code, 2);
    assert.match(r.err, /queue q does not exist/);
    // The broker opened with create makes it again.
    await broker.publish('q', 'again');
    assert.equal((await broker.consumeOne('q'))!.text, 'again');
  });

  it('a deleted work/ is made again by consume; leases held in it are reported lost', async () => {
    const root = join(tempDir(), 'root');
    const broker = await Broker.open(root, { create: true });
    await broker.createQueue('q');
    for (const t of ['a', 'b']) await broker.publish('q', t);
    const [held] = await broker.consume('q');
    fs.rmSync(join(root, 'q', 'work'), { recursive: true });
    assert.deepEqual((await broker.counts('q'))[0]!.inFlight, 0);
    await assert.rejects(broker.ack(held!), code('NOT_IN_FLIGHT'));
    assert.equal((await broker.clean('q'))[0]!.requeued, 0);
    assert.equal((await broker.consumeOne('q'))!.text, 'b');
    assert.equal(ls(join(root, 'q', 'work')).length, 1);
  });
});
