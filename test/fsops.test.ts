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
import { after, before, describe, it } from 'node:test';
import { REPO, tempDir } from './helpers.js';

interface Rig {
  name: string;
  a: string;
}
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
const rigs: Rig[] = process.env.DDMQ_NETFS ? (JSON.parse(process.env.DDMQ_NETFS) as Rig[]) : [];
if (rigs.length === 0 && process.env.CI) throw new Error('CI must run the network file system tests: run them through scripts/with-netfs.sh');

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

const places: { name: string; make: () => string }[] = [
  { name: 'local disk', make: () => tempDir('ddmq-fsops-') },
  ...rigs.map((rig) => ({ name: `${rig.name} (mount A)`, make: () => fs.mkdtempSync(join(rig.a, 'ddmq-fsops-test-')) })),
];

for (const place of places) {
  describe(`file-system calls on ${place.name}`, { skip: !hasStrace && 'strace is not installed' }, () => {
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
