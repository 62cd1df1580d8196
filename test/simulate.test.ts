/**
 * The farm simulation (sim/, `npm run simulate`): deterministic with a seed, every task done
 * exactly once in the model, server load that grows with the farm until the server saturates,
 * and `--check` against real runs stored in test/fixtures/sim-real-runs.json (measured on the
 * rigs of this machine; the command that made them is in the file). It asserts what the model
 * computes, never how fast anything runs.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runFarm } from '../bench/farm.mjs';
import { type SimConfig, simulate } from '../sim/model.mjs';
import { loadProfiles, loadStrategy, relError } from '../sim/simulate.mjs';
import { REPO, tempDir } from './helpers.js';

const profiles = loadProfiles();
const main = loadStrategy('main');
const SIMULATE = join(REPO, 'sim', 'simulate.mjs');
const FIXTURE = join(REPO, 'test', 'fixtures', 'sim-real-runs.json');

function run(args: string[]) {
  return spawnSync(process.execPath, [SIMULATE, ...args], { encoding: 'utf8' });
}

function config(over: Partial<SimConfig>): SimConfig {
  return { hosts: 2, workers: 4, depth: 400, taskSeconds: 0.05, profile: profiles.moosefs!, strategy: main, seed: 7, ...over };
}

describe('npm run simulate', () => {
  it('is deterministic with a seed, and the seed matters', () => {
    const a = simulate(config({ seed: 11 }));
    const b = simulate(config({ seed: 11 }));
    assert.deepEqual(a, b);
    assert.ok(a.lost > 0, 'contention: some claims are lost');
    const others = [12, 13, 14].map((seed) => simulate(config({ seed })).lost);
    assert.ok(others.some((lost) => lost !== a.lost), `another seed, other lost claims: ${a.lost} vs ${others.join(', ')}`);
    // The CLI too: the same JSON twice.
    const args = ['--fs', 'glusterfs', '--hosts', '2', '--workers', '3', '--depth', '200', '--task-seconds', '0.01', '--seed', '5', '--json'];
    const r1 = run(args);
    const r2 = run(args);
    assert.equal(r1.status, 0, r1.stderr);
    assert.equal(r1.stdout, r2.stdout);
    assert.equal(JSON.parse(r1.stdout).acked, 200);
  });

  it('does every task exactly once, on every profile and strategy, with stale listings too', () => {
    for (const fsName of ['local', 'sshfs', 'glusterfs', 'moosefs', 'nfs-assumed']) {
      for (const strategy of ['main', 'before-12']) {
        for (const shape of [{ hosts: 1, workers: 1 }, { hosts: 3, workers: 5 }, { hosts: 8, workers: 2, sharedCores: 2 }]) {
          const r = simulate(config({ ...shape, depth: 300, taskSeconds: 0.02, profile: profiles[fsName]!, strategy: loadStrategy(strategy) }));
          const what = `${fsName} ${strategy} ${JSON.stringify(shape)}`;
          assert.ok(r.drained, what);
          assert.equal(r.acked, 300, what);
          assert.equal(r.claims, 300, `${what}: one won claim per task`);
          assert.equal(r.ackedTwice, 0, what);
          assert.equal(r.neverAcked, 0, what);
          assert.equal(r.byKind.rename, r.claims + r.lost, `${what}: every attempt is one rename`);
          assert.equal(r.byKind.unlink, 300, what);
        }
      }
    }
  });

  it("follows main's claim strategy: each of its rules changes the claims, and together they lose fewer than before issue 12", () => {
    // 16 consumers over two mounts draining 2,000 tasks with no task time: the contended case.
    const contended = (strategy: Record<string, unknown>, seed = 3) =>
      simulate(config({ hosts: 2, workers: 8, depth: 2000, taskSeconds: 0, profile: profiles.moosefs!, strategy, seed }));
    const lostOver = (strategy: Record<string, unknown>) => [1, 2, 3, 4, 5].reduce((sum, seed) => sum + contended(strategy, seed).lostRatio, 0) / 5;
    const now = lostOver(main);
    const before = lostOver(loadStrategy('before-12'));
    assert.ok(now < 0.85 * before, `main loses ${now.toFixed(3)} of its claims, before issue 12 ${before.toFixed(3)}`);
    // Each rule, switched off alone, gives other claims (the model follows it).
    const base = contended(main);
    for (const set of ['streakOnList=reset', 'streakOnList=decrement', 'winsPerStep=0', 'enterAtRandom=false', 'tailRelistMs=0', 'tailCost=full', 'jumpCap=half', 'jumpBase=2', 'jumpMaxExp=3']) {
      const other = contended(loadStrategy('main', [set]));
      assert.ok(other.lost !== base.lost || other.listings !== base.listings, `${set}: the same ${base.lost} lost claims and ${base.listings} listings`);
    }
    // A loss near the end of a listing lists again instead of jumping: more listings with it.
    assert.ok(base.listings > contended(loadStrategy('main', ['tailRelistMs=0'])).listings);
    // The last names of a draining queue: a listing again timed by what listing them costs,
    // and jumps over all that is left, lose fewer than the rules before (timed by the whole
    // listing's cost, at least 100 ms apart; jumps within half of what is left).
    const tail = lostOver(loadStrategy('main', ['tailRelistMs=100', 'tailCost=full', 'jumpCap=half']));
    assert.ok(now < 0.85 * tail, `main loses ${now.toFixed(3)} of its claims, with the tail rules before ${tail.toFixed(3)}`);
    // An old listing is replaced, never refreshed: workers back from a minute's task do not
    // walk into the names others took meanwhile.
    const long = (strategy: Record<string, unknown>) =>
      simulate(config({ hosts: 10, workers: 10, depth: 400, taskSeconds: 60, profile: profiles.moosefs!, strategy, seed: 1 })).lostRatio;
    const replaced = long(main);
    const refreshed = long(loadStrategy('main', ['refresh=true']));
    assert.ok(replaced < 0.7 * refreshed, `60 s tasks: ${replaced.toFixed(3)} lost with the listing replaced, ${refreshed.toFixed(3)} refreshed`);
  });

  it('does not livelock on a shared machine when a CPU job is left with a rounding error', { timeout: 30_000 }, () => {
    // GlusterFS at latencyScale 1.4, 16 consumers on 2 shared cores: a job left with ~1e-9 µs
    // kept the clock still (now + its time === now) before jobs under a nanosecond counted as done:
    // without that this test never ends (the loop is synchronous; the timeout cannot fire).
    const r = simulate({ layout: [8, 8], depth: 2000, taskSeconds: 0, profile: { ...profiles.glusterfs!, latencyScale: 1.4 }, strategy: main, seed: 1, sharedCores: 2, otherLoad: 0.2, wakeUs: 300, crowding: 1, maxSeconds: 60 });
    assert.ok(r.drained);
    assert.equal(r.acked, 2000);
  });

  it('counts metadata calls as bench/farm.mjs --count-ops and bench:fsops do: ~3 a task for a lone consumer', () => {
    // bench:fsops (README, Operations per message): consume + ack = 3.12 metadata calls a
    // message on local disk (openat, rename, unlink, a share of a listing); read and close are data calls.
    const r = simulate(config({ hosts: 1, workers: 1, depth: 2000, taskSeconds: 0, profile: profiles.local! }));
    const perTask = (r.syscallsPerSecond * r.seconds) / r.acked;
    assert.ok(perTask >= 3 && perTask <= 3.3, `${perTask.toFixed(2)} metadata calls a task`);
  });

  it('stopped early (until), gives the figures up to the stop: the tasks in flight then finish after it', () => {
    // 100 workers with tasks of 1 s do at most 100 tasks a second; 400 tasks, stopped at 240.
    const cfg = config({ hosts: 10, workers: 10, depth: 400, taskSeconds: 1, until: 0.6 });
    const r = simulate(cfg);
    assert.ok(r.drained);
    assert.ok(r.acked > 240, `tasks in flight at the stop finish: ${r.acked}`);
    assert.ok(r.throughput <= 100, `at most 100 tasks/s, got ${r.throughput}`);
    assert.ok(Math.abs(r.throughput - 240 / r.seconds) < 0.1, `240 tasks in ${r.seconds} s, not ${r.throughput}/s`);
    assert.ok(Math.abs(r.opsPerTask - r.serverOps / 240) < 0.01, `${r.serverOps} calls for 240 tasks, not ${r.opsPerTask} a task`);
    // Drained, every call counts, until the workers stop.
    const all = simulate({ ...cfg, until: 1 });
    assert.ok(Math.abs(all.throughput - 400 / all.seconds) < 0.1, `400 tasks in ${all.seconds} s, not ${all.throughput}/s`);
  });

  it('never lowers the server ops/s when workers are added while the server is not saturated', () => {
    for (const fsName of ['moosefs', 'glusterfs', 'sshfs']) {
      const rows = [1, 2, 4, 8, 16].map((workers) =>
        simulate(config({ hosts: 4, workers, depth: 40 * workers, taskSeconds: 1, profile: profiles[fsName]! })),
      );
      for (let i = 1; i < rows.length; i++) {
        const [prev, cur] = [rows[i - 1]!, rows[i]!];
        if (cur.serverUtilisation >= 0.8) break;
        assert.ok(cur.opsPerSecond >= prev.opsPerSecond, `${fsName}: ${prev.workers} → ${cur.workers} workers: ${prev.opsPerSecond} → ${cur.opsPerSecond} ops/s`);
        // Twice the workers, with tasks of 1 s and a server far from saturated: nearly twice the throughput.
        assert.ok(cur.throughput >= 1.8 * prev.throughput, `${fsName}: throughput ${prev.throughput} → ${cur.throughput}`);
      }
    }
  });

  it('shows a saturated server: ops/s flattens and utilisation nears 1', () => {
    // 1,500 workers on MooseFS's single master, 1 s tasks: more demand than one thread serves.
    const r = simulate(config({ hosts: 150, workers: 10, depth: 4500, taskSeconds: 1 }));
    assert.equal(r.acked, 4500);
    assert.ok(r.serverUtilisation > 0.85, `utilisation ${r.serverUtilisation}`);
    const bigger = simulate(config({ hosts: 300, workers: 10, depth: 9000, taskSeconds: 1 }));
    assert.ok(bigger.throughput < 1.2 * r.throughput, `twice the workers, about the same throughput: ${r.throughput} → ${bigger.throughput}`);
  });

  it('--largest counts a slow start: the farm must reach --until on time as well as keep busy in the steady window', () => {
    // MooseFS, tasks of 1 s: 640 workers are 90% busy from 10% to 50% done, but their first
    // listings of the whole queue make them reach 60% after 3.8 s where task after task
    // would take 2.9 s: 320 is the largest farm.
    const r = run(['--fs', 'moosefs', '--workers', '10', '--task-seconds', '1', '--depth-per-worker', '4', '--start-spread', 'T', '--task-jitter', '0.1', '--until', '0.6', '--largest', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const [row] = JSON.parse(r.stdout) as { largest: { consumers: number; efficiency: number; onTime: number }; next: { consumers: number; efficiency: number; onTime: number }; limit: string }[];
    assert.ok(row!.largest.efficiency >= 0.9 && row!.largest.onTime >= 0.8, JSON.stringify(row!.largest));
    assert.equal(row!.largest.consumers, 320);
    assert.ok(row!.next.efficiency >= 0.9 && row!.next.onTime < 0.8, JSON.stringify(row!.next));
    assert.equal(row!.limit, 'a slow start');
  });

  it('--check compares the stored real runs: 38 of 40 within 25% on every figure', (t) => {
    // The stored runs (bench/farm.mjs through sim/measure.sh; the command is in the file): local
    // disk and each rig, 1-16 consumers, tasks of 0 and 10 ms, medians of 3 repeats, the
    // machine's other load measured during each (0-10%: a quiet machine), metadata calls per
    // task from --count-ops twins. Two, both a lone consumer with no task time, are not within
    // 25% (sim/README.md says why): the test holds what the model achieves on them.
    const stored = JSON.parse(fs.readFileSync(FIXTURE, 'utf8'));
    assert.match(stored.command, /sim\/measure\.sh/);
    assert.equal(stored.runs.length, 40);
    assert.equal(stored.runs.filter((x: { opsPerSecond?: number }) => x.opsPerSecond !== undefined).length, 40, 'ops/s for every run');
    const r = run(['--check', FIXTURE]);
    const rows = JSON.parse(run(['--check', FIXTURE, '--json']).stdout) as {
      fs: string;
      consumers: number;
      taskMs: number;
      ok: boolean;
      figures: Record<string, { predicted: number; measured: number; error: number; ok: boolean }>;
    }[];
    assert.equal(rows.length, stored.runs.length);
    let lostWithin = 0;
    for (const row of rows) {
      const { throughput, lostRatio, opsPerSecond } = row.figures;
      t.diagnostic(`${row.fs} ${row.consumers} consumers, ${row.taskMs} ms: throughput ${throughput!.predicted}/${throughput!.measured}, lost ${lostRatio!.predicted}/${lostRatio!.measured}, ops/s ${opsPerSecond!.predicted}/${opsPerSecond!.measured}`);
      assert.ok(Math.abs(throughput!.error) <= 0.45, `${row.fs} ${row.consumers}: throughput off by ${throughput!.error}`);
      assert.ok(Math.abs(lostRatio!.predicted - lostRatio!.measured) <= 0.03, `${row.fs} ${row.consumers}: lost ratio ${lostRatio!.predicted} vs ${lostRatio!.measured}`);
      if (lostRatio!.ok) lostWithin++;
      // Within 25%, or (a lost ratio) within two standard errors of the measured count of lost claims.
      const run = stored.runs.find((x: { fs: string; consumers: number; taskMs: number }) => x.fs === row.fs && x.consumers === row.consumers && x.taskMs === row.taskMs);
      const noise = (2 * Math.sqrt(Math.max(1, run.lost))) / (run.lost + run.claims);
      assert.equal(lostRatio!.ok, Math.abs(lostRatio!.error) <= 0.25 || Math.abs(lostRatio!.predicted - lostRatio!.measured) <= noise);
      assert.equal(row.ok, Object.values(row.figures).every((f) => f.ok) && Math.abs(throughput!.error) <= 0.25 && (opsPerSecond === undefined || Math.abs(opsPerSecond.error) <= 0.25));
    }
    assert.equal(lostWithin, rows.length, `lost ratio within 25% (or its counting noise) in ${lostWithin} of ${rows.length}`);
    const within = rows.filter((row) => row.ok).length;
    assert.ok(within >= 38, `${within} of ${rows.length} within 25% on every figure`);
    // The two that are not: a lone consumer with no task time on GlusterFS and on local disk
    // (throughput, predicted 31% and 40% low).
    assert.deepEqual(rows.filter((row) => !row.ok).map((row) => `${row.fs} ${row.consumers} ${row.taskMs}`).sort(), ['glusterfs 1 0', 'local 1 0']);
    assert.match(r.stdout, new RegExp(`${within} of ${rows.length} runs within 25%`));
    assert.equal(r.status, within === rows.length ? 0 : 1);
    // The runs tell the strategies apart: the cursor before issue 12 matches far fewer.
    const before = JSON.parse(run(['--check', FIXTURE, '--json', '--strategy', 'before-12']).stdout) as { ok: boolean }[];
    assert.ok(before.filter((row) => row.ok).length < within / 2, `before-12: ${before.filter((row) => row.ok).length} within`);
  });

  it('--check fails when a measurement is off by more than 25%', () => {
    const stored = JSON.parse(fs.readFileSync(FIXTURE, 'utf8'));
    stored.runs[stored.runs.length - 1].throughput *= 1.5;
    const file = join(tempDir(), 'doctored.json');
    fs.writeFileSync(file, JSON.stringify(stored));
    const r = run(['--check', file]);
    assert.equal(r.status, 1, r.stdout);
    assert.match(r.stdout, /off by more than 25%/);
    assert.equal(relError(80, 100), -0.2);
    // bench/farm.mjs names its mounts ("A,B"): the same prediction as a count of 2.
    const run0 = stored.runs[0];
    const asFarm = join(tempDir(), 'farm.json');
    fs.writeFileSync(asFarm, JSON.stringify([{ ...run0, mounts: 'A,B' }]));
    const asCount = join(tempDir(), 'count.json');
    fs.writeFileSync(asCount, JSON.stringify([{ ...run0, mounts: 2 }]));
    assert.deepEqual(JSON.parse(run(['--check', asFarm, '--json']).stdout)[0].figures, JSON.parse(run(['--check', asCount, '--json']).stdout)[0].figures);
    assert.equal(relError(0.01, 0, 0.02), 0, 'two small lost ratios are equal');
  });

  it("bench/farm.mjs records the machine's other load and the farm's CPU, for --check", async () => {
    const results = await runFarm({ root: tempDir(), mounts: ['A'], consumers: [2], tasks: 60, taskMs: 0, repeat: 2 });
    const r = results[0]!;
    assert.equal(r.acked, 60);
    assert.ok(r.otherLoad >= 0 && r.otherLoad <= 1, `otherLoad ${r.otherLoad}`);
    assert.equal(r.otherLoads.length, 2);
    assert.equal(r.throughputs.length, 2);
    assert.ok(r.consumerCpuMsPerTask > 0, `consumers' CPU ${r.consumerCpuMsPerTask} ms a task`);
    assert.deepEqual(r.daemonCpuMsPerTask, {}, 'local disk has no daemons');
  });

  it('sim/fixture.mjs gives each run the metadata calls per task of its --count-ops run, at its own throughput', () => {
    const dir = tempDir();
    const base = { fs: 'moosefs', consumers: 4, mounts: 'A,B', tasks: 1000, taskMs: 0, seconds: 1, lost: 50, claims: 1050, lostRatio: 0.0476, listings: 20, runs: 3, otherLoad: 0.1 };
    fs.writeFileSync(join(dir, 'plain.json'), JSON.stringify([{ ...base, throughput: 1000 }, { ...base, consumers: 8, throughput: 900 }]));
    fs.writeFileSync(join(dir, 'ops.json'), JSON.stringify([{ ...base, throughput: 800, opsPerSecond: 2480 }]));
    const r = spawnSync(process.execPath, [join(REPO, 'sim', 'fixture.mjs'), join(dir, 'plain.json'), '--ops', join(dir, 'ops.json'), '--command', 'by hand'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.command, 'by hand');
    assert.equal(out.runs[0].opsPerTask, 3.1);
    assert.equal(out.runs[0].opsPerSecond, 3100);
    assert.equal(out.runs[0].stracedThroughput, 800);
    assert.equal(out.runs[1].opsPerSecond, undefined, 'no --count-ops run of 8 consumers');
    const bad = spawnSync(process.execPath, [join(REPO, 'sim', 'fixture.mjs'), join(dir, 'none.json'), '--command', 'x'], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /fixture: .*none\.json: ENOENT/);
  });

  it('sim/table.mjs refuses a file that is not simulate --json output, without a stack trace', () => {
    const dir = tempDir('sim-table-');
    const notJson = join(dir, 'notes.txt');
    fs.writeFileSync(notJson, 'not JSON');
    const other = join(dir, 'other.json');
    fs.writeFileSync(other, JSON.stringify([{ fs: 'moosefs' }]));
    for (const [file, what] of [
      [join(dir, 'none.json'), /table: .*none\.json: ENOENT/],
      [notJson, /table: .*notes\.txt: .*not valid JSON/],
      [other, /table: .*other\.json: not npm run simulate -- \.\.\. --json output/],
    ] as const) {
      const r = spawnSync(process.execPath, [join(REPO, 'sim', 'table.mjs'), file], { encoding: 'utf8' });
      assert.equal(r.status, 2, file);
      assert.match(r.stderr, what);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
      assert.equal(r.stdout, '', 'no half table');
    }
  });

  it('sim/fit.mjs refuses bad input before fitting, without a stack trace', () => {
    const dir = tempDir('sim-fit-');
    const unknownFs = join(dir, 'zzz.json');
    fs.writeFileSync(unknownFs, JSON.stringify([{ fs: 'zzz', consumers: 1, tasks: 10, taskMs: 0, throughput: 5, lostRatio: 0 }]));
    const shape = join(dir, 'shape.json');
    fs.writeFileSync(shape, JSON.stringify({ runs: 5 }));
    for (const [args, what] of [
      [[unknownFs], /fit: .*zzz\.json: no profile for fs "zzz"/],
      [[shape], /fit: .*shape\.json: not an array of real runs/],
      [[FIXTURE, '--rigs', 'nope'], /fit: --rigs: no profile "nope"/],
      [['--frobnicate', FIXTURE], /fit: unknown argument "--frobnicate"/],
    ] as const) {
      const r = spawnSync(process.execPath, [join(REPO, 'sim', 'fit.mjs'), ...args], { encoding: 'utf8', timeout: 20_000 });
      assert.equal(r.status, 2, args.join(' '));
      assert.match(r.stderr, what);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    }
    const help = spawnSync(process.execPath, [join(REPO, 'sim', 'fit.mjs'), '--help'], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(help.status, 0);
    assert.match(help.stdout, /^usage: node sim\/fit\.mjs FIXTURE\.json/);
  });

  it('refuses bad input with a message that names it, without a stack trace', () => {
    for (const [args, what] of [
      [['--workers', 'x'], /--workers: "x" is not a whole number/],
      [['--fs', 'nfs9'], /--fs: no profile "nfs9"/],
      [['--set', 'jumpMaxExp=big'], /--set jumpMaxExp: "big" is not a number/],
      // A word the model does not know, or a negative number, would run another strategy unsaid.
      [['--set', 'jumpCap=halff'], /--set jumpCap: "halff" is not one of all, half/],
      [['--set', 'streakOnList=never'], /--set streakOnList: "never" is not one of keep, decrement, reset/],
      [['--set', 'jumpBase=0'], /--set jumpBase: "0" is less than 1/],
      [['--set', 'winsPerStep=-1'], /--set winsPerStep: "-1" is less than 0/],
      [['--set', 'pollJitter=1'], /--set pollJitter: "1" is not less than 1/],
      [['--check', '/nonexistent/runs.json'], /cannot read real runs \/nonexistent\/runs\.json: ENOENT/],
      [['--hosts'], /--hosts needs a value/],
      [['--frobnicate'], /unknown argument "--frobnicate"/],
      [['--max-seconds', '0'], /--max-seconds: must be more than 0/],
    ] as const) {
      const r = run([...args]);
      assert.equal(r.status, 2, args.join(' '));
      assert.match(r.stderr, what);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    }
  });

  it('npm run farm refuses bad input before it runs anything, without a stack trace', () => {
    const farm = join(REPO, 'bench', 'farm.mjs');
    for (const [args, what] of [
      [['--tasks', '0'], /--tasks 0: give a whole number of at least 1/],
      [['--tasks', '5,6'], /--tasks 5,6: give a whole number of at least 1/],
      [['--consumers', '0,2'], /--consumers 0,2: give whole numbers of at least 1, separated by commas/],
      [['--json', '/nonexistent/x.json'], /--json \/nonexistent\/x\.json: the folder \/nonexistent does not exist/],
    ] as const) {
      const r = spawnSync(process.execPath, [farm, '--root', tempDir(), '--consumers', '1', '--tasks', '5', ...args], { encoding: 'utf8' });
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, what);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    }
  });
});
