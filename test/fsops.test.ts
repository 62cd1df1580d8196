/**
 * The load ddmq puts on a file system's metadata server, counted with strace by
 * bench/fsops.mjs (see bench/fsops-lib.mjs for what is counted), on local disk and on mount A
 * of each network file-system rig in DDMQ_NETFS, against the floor: the fewest calls that do
 * the same job, written by hand with node:fs. The targets (issue 12):
 *   - publish within 1 metadata call a message of the floor's;
 *   - consume + ack within 1 metadata call a message of the floor's;
 *   - a waiting consumer on an empty queue at most 2 metadata calls a second, after its
 *     first poll.
 * Counts, never times, are asserted.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { REPO, tempDir, netfsRigs } from './helpers.js';

interface Per {
  metadata: number;
  byCall: Record<string, number>;
}
interface Result {
  phase: string;
  unit: string;
  ddmq: { per: Per; count: number; seconds: number };
  floor: { per: Per };
  difference: number;
}

const hasStrace = spawnSync('strace', ['-V']).status === 0;
if (!hasStrace && process.env.CI) throw new Error('CI must count file-system calls: .ci/run installs strace');
const rigs = netfsRigs();

const N = 50;
const IDLE_SECONDS = 12;

/** Runs the bench on `root` (publish, consume+ack, an idle waiting consumer) and returns its results by phase. */
async function count(root: string): Promise<Map<string, Result>> {
  const args = [join(REPO, 'bench', 'fsops.mjs'), '--root', root, '--n', String(N), '--idle', String(IDLE_SECONDS), '--phases', 'publish,consume-ack,idle-consume', '--json'];
  const { code, out, err } = await new Promise<{ code: number | null; out: string; err: string }>((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out, err }));
  });
  assert.equal(code, 0, err);
  const report = JSON.parse(out) as { results: Result[] };
  return new Map(report.results.map((r) => [r.phase, r]));
}

const show = (per: Per) =>
  `${per.metadata.toFixed(2)} (${Object.entries(per.byCall)
    .map(([c, k]) => `${c} ${k.toFixed(2)}`)
    .join(', ')})`;

describe('the counting of bench/fsops', () => {
  it('counts only the calls under the folder, between the markers, once each, through /proc/PID/fd paths too', async () => {
    type Counts = { metadata: number; data: number; other: number; byCall: Record<string, number> };
    const lib = (await import(pathToFileURL(join(REPO, 'bench', 'fsops-lib.mjs')).href)) as { countTrace: (text: string, under: string) => Counts };
    const R = '/mnt/x/r';
    const trace = [
      `10 openat(AT_FDCWD</>, "${R}/q/before", O_RDONLY) = 3<${R}/q/before>`,
      `10 statx(AT_FDCWD</>, "${R}/.fsops-begin", 0, STATX_ALL, 0x1) = -1 ENOENT (No such file or directory)`,
      `10 openat(AT_FDCWD</>, "${R}/q", O_RDONLY|O_DIRECTORY) = 19<${R}/q>`,
      `11 getdents64(19<${R}/q>, 0x2 /* 3 entries */, 32768 <unfinished ...>`,
      `10 write(1<pipe:[7]>, "${R}/q/x", 9) = 9`,
      `11 <... getdents64 resumed>) = 80`,
      `10 openat(AT_FDCWD</>, "/proc/42/fd/19/ddmq.yaml", O_RDONLY) = 20<${R}/q/ddmq.yaml>`,
      `10 read(20<${R}/q/ddmq.yaml>, "{}", 65536) = 2`,
      `10 unlink("/proc/42/fd/19/work/1.b.ddmq2") = 0`,
      `10 close(20<${R}/q/ddmq.yaml>) = 0`,
      `10 renameat2(AT_FDCWD</>, "${R}/q/a.ddmq1", AT_FDCWD</>, "${R}/q/work/1.a.ddmq1", 0) = 0`,
      `10 fcntl(20<${R}/q/ddmq.yaml>, F_GETFL) = 0`,
      `10 openat(AT_FDCWD</>, "/mnt/x/r2/q", O_RDONLY) = 21</mnt/x/r2/q>`,
      `10 openat(AT_FDCWD</>, "/usr/lib/node", O_RDONLY) = 22</usr/lib/node>`,
      `10 statx(AT_FDCWD</>, "${R}/.fsops-end", 0, STATX_ALL, 0x1) = -1 ENOENT (No such file or directory)`,
      `10 unlink("${R}/q/after") = 0`,
      '+++ exited with 0 +++',
    ].join('\n');
    const counts = lib.countTrace(trace, R);
    assert.deepEqual(counts.byCall, { openat: 2, getdents64: 1, read: 1, unlink: 1, close: 1, renameat2: 1, fcntl: 1 });
    assert.deepEqual([counts.metadata, counts.data, counts.other], [5, 2, 1]);
    assert.throws(() => lib.countTrace(trace.split('\n').slice(0, 5).join('\n'), R), /no begin and end markers/);
  });
});

const places: { name: string; make: () => string }[] = [
  { name: 'local disk', make: () => tempDir('ddmq-fsops-') },
  ...rigs.map((rig) => ({ name: `${rig.name} (mount A)`, make: () => fs.mkdtempSync(join(rig.a, 'ddmq-fsops-test-')) })),
];

// The places at once: each is counted in processes and folders of its own, and mostly waits.
describe('file-system calls per message and per idle second', { concurrency: true }, () => {
  for (const place of places) {
    describe(`on ${place.name}`, { skip: !hasStrace && 'strace is not installed' }, () => {
      let root = '';
      let results = new Map<string, Result>();
      before(async () => {
        root = place.make();
        results = await count(root);
        for (const r of results.values()) console.log(`${place.name}: ${r.phase} a ${r.unit}: ddmq ${show(r.ddmq.per)}; floor ${show(r.floor.per)}`);
      });
      after(() => fs.rmSync(root, { recursive: true, force: true })); // on a rig: through the mount, never the brick

      it(`publish: within 1 metadata call a message of the floor (${N} messages)`, () => {
        const r = results.get('publish')!;
        assert.equal(r.ddmq.count, N);
        assert.ok(r.floor.per.metadata >= 2, 'the floor counts its open and rename: the counting sees the calls');
        assert.ok(r.difference <= 1, `ddmq ${show(r.ddmq.per)} against the floor's ${show(r.floor.per)}`);
      });

      it(`consume + ack: within 1 metadata call a message of the floor (${N} messages, one a consume)`, () => {
        const r = results.get('consume-ack')!;
        assert.equal(r.ddmq.count, N);
        assert.ok(r.floor.per.metadata >= 3, 'the floor counts its rename, open and unlink: the counting sees the calls');
        assert.ok(r.difference <= 1, `ddmq ${show(r.ddmq.per)} against the floor's ${show(r.floor.per)}`);
      });

      it(`an idle waiting consumer: at most 2 metadata calls a second (over ${IDLE_SECONDS} s after its first poll)`, () => {
        const r = results.get('idle-consume')!;
        assert.ok(r.ddmq.seconds >= IDLE_SECONDS - 0.5, `watched for ${r.ddmq.seconds} s`);
        assert.ok(r.floor.per.metadata > 0, 'the floor lists the folder once a second: the counting sees the calls');
        assert.ok(r.ddmq.per.metadata <= 2, `ddmq ${show(r.ddmq.per)} a second; one listing a second costs ${show(r.floor.per)}`);
      });
    });
  }
});

describe('bench/fsops: bad input', () => {
  it('an --out it cannot write is refused before counting, in one line, not with a stack trace after the run', () => {
    const root = tempDir();
    for (const [out, said] of [
      [join(root, 'no-such-folder', 'o.json'), /--out: .*its folder .* is not there/],
      [root, /--out: .* is a folder/],
    ] as const) {
      const r = spawnSync(process.execPath, [join(REPO, 'bench', 'fsops.mjs'), '--root', root, '--phases', 'publish', '--n', '3', '--out', out], { encoding: 'utf8' });
      assert.equal(r.status, 2, r.stdout + r.stderr);
      assert.match(r.stderr, said);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
      assert.equal(r.stdout, '', 'nothing was counted');
    }
  });
});
