/**
 * Hosts whose clocks disagree, for real: clients run as child processes under libfaketime
 * (`faketime -f '+120s'`, `'-120s'`) beside an honest one, on local disk and on each
 * network file system rig of DDMQ_NETFS (client A through mount A, client B through mount B,
 * as two hosts). With the file server's clock (src/store/server-clock.ts) they agree on
 * leases and due times:
 *   (a) a client 120 s ahead does not take a live lease another client holds (its clean and
 *       its consume leave it alone);
 *   (b) a client 120 s behind takes a dead consumer's expired lease within lease + grace;
 *   (c) leases written by skewed clients are judged right by an honest one (a live one
 *       written by the client behind is left alone; a dead one written by the client ahead
 *       is taken back in time), and their expiry is the server's time + the lease;
 *   (d) delayed messages published by skewed clients become due at the server's time.
 *
 * DDMQ_TEST_SERVER_CLOCK=0 runs every client with DDMQ_SERVER_CLOCK=0 (their own clocks):
 * then (a) to (d) fail, which shows that these tests test the server clock.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseInFlightName } from '../src/format/names.js';
import { Broker } from '../src/index.js';
import { CLI, type ChildResult, runChild, sleep, tempDir } from './helpers.js';

interface Rig {
  name: string;
  a: string;
  b: string;
  truth: string;
  cacheSeconds: number;
}

const rigs: Rig[] = process.env.DDMQ_NETFS ? (JSON.parse(process.env.DDMQ_NETFS) as Rig[]) : [];
if (rigs.length === 0 && process.env.CI) throw new Error('CI must run the network file system tests: run them through scripts/with-netfs.sh');

const hasFaketime = spawnSync('faketime', ['-f', '+0s', 'true'], { stdio: 'ignore' }).status === 0;
// CI installs faketime (.ci/run); without it these tests cannot run, which must not pass silently there.
if (!hasFaketime && process.env.CI) throw new Error('the clock skew tests need libfaketime (apt-get install faketime)');

const OFF = process.env.DDMQ_TEST_SERVER_CLOCK === '0';

type Skew = '+120s' | '-120s' | null;

/** Runs the CLI as a host whose clock is `skew` off (null: honest). */
function ddmq(skew: Skew, ...args: (string | number)[]): Promise<ChildResult> {
  const env: Record<string, string> = OFF ? { DDMQ_SERVER_CLOCK: '0' } : {};
  return skew === null ? runChild(process.execPath, [CLI, ...args], { env }) : runChild('faketime', ['-f', skew, process.execPath, CLI, ...args], { env });
}

const nowSec = () => Date.now() / 1000;

/** Waits until `dir` (as one mount shows it) holds a file whose name passes `test`; returns the name. */
async function visible(dir: string, test: (name: string) => boolean, what: string): Promise<string> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    let names: string[] = [];
    try {
      names = fs.readdirSync(dir);
    } catch {
      // not there yet through this mount
    }
    const hit = names.find(test);
    if (hit !== undefined) return hit;
    assert.ok(Date.now() < deadline, `${what} never became visible in ${dir}`);
    await sleep(250);
  }
}
const isMsg = (n: string) => n.includes('.ddmq');

/**
 * Removes a test's tree through the mounts (never a brick). A mount's listing may lag what
 * the other mount did (sshfs: ~21 s), so a folder may look empty and not be: tried again.
 */
async function removeThroughMounts(paths: string[]): Promise<void> {
  const deadline = Date.now() + 90_000;
  for (;;) {
    try {
      for (const p of paths) fs.rmSync(p, { recursive: true, force: true });
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(1000);
    }
  }
}

function ok(r: ChildResult, what: string): string {
  assert.equal(r.code, 0, `${what}: exit ${r.code}\n${r.err}`);
  return r.out;
}

/** The clean result of one queue, from `ddmq clean --format json`. */
function cleaned(r: ChildResult, what: string): { requeued: number } {
  return JSON.parse(ok(r, what).trim().split('\n')[0]!) as { requeued: number };
}

describe('libfaketime skews node', { skip: hasFaketime ? false : 'faketime is not installed' }, () => {
  it('a child under faketime -f +120s / -120s reads Date.now 120 s off', async () => {
    for (const [skew, ms] of [['+120s', 120_000], ['-120s', -120_000]] as const) {
      const before = Date.now();
      const r = await runChild('faketime', ['-f', skew, process.execPath, '-e', 'console.log(Date.now())']);
      const off = Number(r.out) - before;
      assert.ok(Math.abs(off - ms) < 5_000, `${skew}: ${off} ms`);
    }
  });
});

const places: Rig[] = [{ name: 'local disk', a: '', b: '', truth: '', cacheSeconds: 0 }, ...rigs];

describe('clients with skewed clocks agree on leases and due times', { concurrency: true, skip: hasFaketime ? false : 'faketime is not installed' }, () => {
  for (const place of places) {
    it(`on ${place.name}: (a) ahead leaves a live lease, (b) behind takes a dead one in time, (c) skewed leases judged right, (d) skewed delays due on time`, async () => {
      let onA: string;
      let onB: string;
      if (place.a === '') {
        onA = onB = join(tempDir(), 'root');
      } else {
        const top = `ddmq-i12-clock-${randomUUID().slice(0, 8)}`;
        fs.mkdirSync(join(place.a, top));
        after(() => removeThroughMounts([join(place.b, top), join(place.a, top)]));
        onA = join(place.a, top, 'root');
        onB = join(place.b, top, 'root');
      }
      // Every check is made, and all that fail are reported together.
      const failures: string[] = [];
      const check = (cond: boolean, what: string) => {
        if (!cond) failures.push(what);
      };
      const queues = ['qa', 'qb', 'qc1', 'qc2', 'qd1', 'qd2'];
      const setup = await Broker.open(onA, { create: true });
      for (const q of queues) await setup.createQueue(q);
      for (const q of queues) await visible(join(onB, q), (n) => n === 'ddmq.yaml', `queue ${q} through mount B`);

      // ---- step 1: leases taken and messages published --------------------------------
      const t0 = nowSec();
      ok(await ddmq(null, 'publish', onB, 'qa', 'a'), 'honest publish qa');
      ok(await ddmq(null, 'consume', onB, 'qa', '-t', 60), 'honest consume qa (live, 60 s)');
      ok(await ddmq(null, 'publish', onA, 'qb', 'b'), 'honest publish qb');
      ok(await ddmq(null, 'consume', onA, 'qb', '-t', 1), 'honest consume qb (then dead, 1 s)');
      ok(await ddmq('-120s', 'publish', onB, 'qc1', 'c1'), 'behind publish qc1');
      ok(await ddmq('-120s', 'consume', onB, 'qc1', '-t', 60), 'behind consume qc1 (live, 60 s)');
      ok(await ddmq('+120s', 'publish', onA, 'qc2', 'c2'), 'ahead publish qc2');
      ok(await ddmq('+120s', 'consume', onA, 'qc2', '-t', 1), 'ahead consume qc2 (then dead, 1 s)');
      ok(await ddmq('-120s', 'publish', onB, 'qd1', 'd1', '--delay', 60), 'behind publish qd1 (delay 60 s)');
      ok(await ddmq('+120s', 'publish', onA, 'qd2', 'd2', '--delay', 3), 'ahead publish qd2 (delay 3 s)');
      const t1 = nowSec();

      // (c) and (d): the times the skewed clients wrote are the server's (this host's, here) + the lease or delay.
      const expiry = (dir: string) => parseInFlightName(fs.readdirSync(dir).find(isMsg)!)!.expiry;
      const near = (got: number, lo: number, hi: number, what: string) => check(got >= Math.floor(lo) - 2 && got <= Math.ceil(hi) + 2, `${what}: ${got} not in ${Math.floor(lo)}..${Math.ceil(hi)} (± 2 s)`);
      near(expiry(join(onB, 'qc1', 'work')), t0 + 60, t1 + 60, '(c) expiry written by the client behind');
      near(expiry(join(onA, 'qc2', 'work')), t0 + 1, t1 + 1, '(c) expiry written by the client ahead');
      near(expiry(join(onB, 'qd1', 'delayed')), t0 + 60, t1 + 60, '(d) due time written by the client behind');
      near(expiry(join(onA, 'qd2', 'delayed')), t0 + 3, t1 + 3, '(d) due time written by the client ahead');

      // ---- step 2: live leases and a delayed message that is not due ------------------
      // Each acting client must see the files first (a mount's listing may be stale).
      const qaLease = await visible(join(onA, 'qa', 'work'), isMsg, 'qa lease through mount A');
      const qc1Lease = await visible(join(onA, 'qc1', 'work'), isMsg, 'qc1 lease through mount A');
      await visible(join(onA, 'qd1', 'delayed'), isMsg, 'qd1 delayed message through mount A');
      // (a) the client 120 s ahead: its clean and its consume leave the live lease alone.
      check(cleaned(await ddmq('+120s', 'clean', onA, 'qa', '--format', 'json'), 'ahead clean qa').requeued === 0, '(a) the client ahead requeued a live lease');
      const stolen = await ddmq('+120s', 'consume', onA, 'qa', '-t', 60);
      check(stolen.code === 3, `(a) the client ahead consumed a message whose live lease another client holds`);
      check(fs.readdirSync(join(onA, 'qa', 'work')).filter(isMsg).join() === qaLease, '(a) the lease is not as its holder left it');
      // (c) a live lease written by the client behind: the honest client leaves it alone.
      check(cleaned(await ddmq(null, 'clean', onA, 'qc1', '--format', 'json'), 'honest clean qc1').requeued === 0, '(c) the honest client requeued a live lease of the client behind');
      check(fs.readdirSync(join(onA, 'qc1', 'work')).filter(isMsg).join() === qc1Lease, '(c) the live lease of the client behind is not as it left it');
      // (d) a delay of 60 s by the client behind is not over for the honest client.
      const early = await ddmq(null, 'consume', onA, 'qd1');
      check(early.code === 3, `(d) the honest client got a message the client behind delayed by 60 s, at once`);

      // ---- step 3: dead leases and a short delay, a few seconds on ---------------------
      await visible(join(onB, 'qb', 'work'), isMsg, 'qb lease through mount B');
      await visible(join(onB, 'qc2', 'work'), isMsg, 'qc2 lease through mount B');
      await visible(join(onB, 'qd2', 'delayed'), isMsg, 'qd2 delayed message through mount B');
      // lease 1 s + grace 5 s + whole seconds of the names and of the clocks' offsets: 10 s
      // after the leases were taken they must be taken back (not 120 s later).
      const wait = t1 + 10 - nowSec();
      if (wait > 0) await sleep(wait * 1000);
      // (b) the client 120 s behind takes the dead honest consumer's lease back.
      check(cleaned(await ddmq('-120s', 'clean', onB, 'qb', '--format', 'json'), 'behind clean qb').requeued === 1, '(b) the client behind did not see an expired lease as expired');
      // (c) the honest client takes back the dead lease the client ahead wrote.
      check(cleaned(await ddmq(null, 'clean', onB, 'qc2', '--format', 'json'), 'honest clean qc2').requeued === 1, '(c) the honest client did not take back the expired lease of the client ahead');
      // (d) the delay of 3 s by the client ahead is over for the honest client.
      const due = await ddmq(null, 'consume', onB, 'qd2');
      check(due.code === 0 && /"d2"/.test(due.out), `(d) a message the client ahead delayed by 3 s was not due ${Math.round(nowSec() - t1)} s later`);
      assert.deepEqual(failures, [], `on ${place.name}`);
      console.log(`# ${place.name}: done in ${Math.round(nowSec() - t0)} s${OFF ? ' (server clock off)' : ''}`);
    });
  }
});
