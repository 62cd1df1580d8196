#!/usr/bin/env node
// npm run simulate -- --hosts H --workers W --depth D --task-seconds T --fs RIG [options]
// A discrete-event simulation of a ddmq farm on a shared file system (sim/model.mjs).
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { simulate } from './model.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const HELP = `Usage: npm run simulate -- [options]

Simulates H hosts × W workers draining one queue of D tasks of T seconds each on a file
system profile (sim/profiles.json), following ddmq's consume path (sim/README.md).

Options (a comma-separated list makes a sweep; every combination is run):
  --hosts H            hosts (mounts) (default 1)
  --workers W          consumers per host (default 1)
  --depth D            tasks in the queue at the start (default 10 × hosts × workers)
  --depth-per-worker N instead of --depth: N × hosts × workers
  --task-seconds T     seconds each task runs (default 1)
  --fs RIG             a profile of sim/profiles.json (default moosefs)
  --strategy NAME      ddmq's behaviour, from sim/strategies.json (default main)
  --set KEY=VALUE      change one parameter of the strategy (repeatable)
  --seed N             random seed (default 1)
  --shared-cores N     every host, daemon and server shares one machine of N cores
                       (as the test rigs here); default: each host has its own CPUs
  --other-load F       on a shared machine, the share of its CPU other programs take (0..0.9)
  --server-speed F     the server serves calls F times faster than measured (default 1)
  --max-seconds S      stop the simulated clock at S seconds (default 1e7)
  --start-spread S     workers start at random over S seconds (default 0.005; T: over one task time)
  --task-jitter F      task times spread evenly over T × (1 ± F) (default 0)
  --until F            stop when this share of the tasks is done (default 1: drained);
                       the steady figures (10% to 50% done) do not need the tail
  --largest            for each --fs and --task-seconds: the largest farm (hosts × --workers,
                       doubling hosts) whose workers are still kept busy 90% of the time
                       (efficiency: throughput × T / workers from 10% to 50% done) and that
                       reaches --until no later than 1.25 × workers doing task after task would
                       (half the start spread, then the tasks), and what stops the next
  --json               print JSON (one object, or an array for a sweep)
  --check FILE         simulate each real run in FILE (bench/farm.mjs results, or sim/fixture.mjs's
                       { runs }) and compare throughput, lost ratio and ops/s (metadata calls a
                       second, when the run has them): exits 1 when any is off by more than 25%
  -h, --help           this text`;

function fail(message) {
  process.stderr.write(`simulate: ${message}\n(see npm run simulate -- --help)\n`);
  process.exit(2);
}

function parse(argv) {
  const o = { sets: [] };
  const takes = new Set(['--hosts', '--workers', '--depth', '--task-seconds', '--fs', '--strategy', '--set', '--seed', '--shared-cores', '--other-load', '--server-speed', '--max-seconds', '--check', '--start-spread', '--task-jitter', '--until', '--depth-per-worker']);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h' || a === '--help') o.help = true;
    else if (a === '--json') o.json = true;
    else if (a === '--largest') o.largest = true;
    else if (takes.has(a)) {
      if (i + 1 >= argv.length || argv[i + 1].startsWith('--')) fail(`${a} needs a value`);
      const v = argv[++i];
      if (a === '--set') o.sets.push(v);
      else o[a.slice(2)] = v;
    } else fail(`unknown argument ${JSON.stringify(a)}`);
  }
  return o;
}

function numbers(name, text, { integer = true, min = 0 } = {}) {
  return String(text)
    .split(',')
    .map((t) => {
      const n = Number(t);
      if (t.trim() === '' || !Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) {
        fail(`--${name}: ${JSON.stringify(t)} is not ${integer ? 'a whole number' : 'a number'} of at least ${min}`);
      }
      return n;
    });
}

function loadJson(file, what) {
  let text;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    fail(`cannot read ${what} ${file}: ${err.code ?? err.message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    fail(`${what} ${file} is not JSON: ${err.message}`);
  }
}

export function loadProfiles() {
  return loadJson(join(here, 'profiles.json'), 'profiles');
}
/** The values sim/model.mjs knows for the strategy's words (sim/strategies.json's sources). */
const STRATEGY_WORDS = { start: ['first', 'random'], streakOnList: ['keep', 'decrement', 'reset'], jumpCap: ['all', 'half'], tailCost: ['scaled', 'full'] };
/** The least value of a number (0 unless given): a window grows by jumpBase per loss. */
const STRATEGY_MIN = { jumpBase: 1 };
export function loadStrategy(name, sets = []) {
  const all = loadJson(join(here, 'strategies.json'), 'strategies');
  if (!Object.hasOwn(all, name) || name.startsWith('_')) fail(`--strategy: no strategy ${JSON.stringify(name)} (have: ${Object.keys(all).filter((k) => !k.startsWith('_')).join(', ')})`);
  const s = { ...all.main, ...all[name] };
  for (const kv of sets) {
    const eq = kv.indexOf('=');
    const key = kv.slice(0, eq);
    if (eq < 1 || !Object.hasOwn(all.main, key) || key === 'sources') fail(`--set ${JSON.stringify(kv)}: expected KEY=VALUE with KEY one of ${Object.keys(all.main).filter((k) => k !== 'sources').join(', ')}`);
    const raw = kv.slice(eq + 1);
    const v = raw === 'true' ? true : raw === 'false' ? false : Number.isFinite(Number(raw)) && raw !== '' ? Number(raw) : raw;
    if (typeof v !== typeof all.main[key]) fail(`--set ${key}: ${JSON.stringify(raw)} is not a ${typeof all.main[key]}`);
    // What sim/model.mjs reads: a word it does not know, or a negative count or time, would
    // silently run another strategy than the one asked for.
    const words = STRATEGY_WORDS[key];
    if (words !== undefined && !words.includes(v)) fail(`--set ${key}: ${JSON.stringify(raw)} is not one of ${words.join(', ')}`);
    if (typeof v === 'number' && v < (STRATEGY_MIN[key] ?? 0)) fail(`--set ${key}: ${JSON.stringify(raw)} is less than ${STRATEGY_MIN[key] ?? 0}`);
    if (key === 'pollJitter' && v >= 1) fail(`--set pollJitter: ${JSON.stringify(raw)} is not less than 1`);
    s[key] = v;
  }
  return s;
}
function profileOf(profiles, name) {
  if (!Object.hasOwn(profiles, name) || name.startsWith('_')) fail(`--fs: no profile ${JSON.stringify(name)} (have: ${Object.keys(profiles).filter((k) => !k.startsWith('_')).join(', ')})`);
  return profiles[name];
}

/** The simulated counterpart of one real run (bench/farm.mjs; the earlier sim/real-run.mjs wrote the same fields). */
export function simulateRun(run, profiles, strategy, { seed = 1, sharedCores = 2, otherLoad = 0, wakeUs = profiles._machine?.wakeUs ?? 0, crowding = profiles[run.fs]?.crowding ?? profiles._machine?.crowding ?? 0 } = {}) {
  // bench/farm.mjs writes which mounts ("A,B"); the earlier sim/real-run.mjs how many.
  const count = typeof run.mounts === 'string' ? run.mounts.split(',').filter(Boolean).length : (run.mounts ?? 1);
  // On local disk mounts A and B are one folder on one host (fs.watch sees every change).
  const mounts = run.fs === 'local' ? 1 : Math.max(1, Math.min(count, run.consumers));
  const layout = Array.from({ length: mounts }, (_, m) => Math.floor(run.consumers / mounts) + (m < run.consumers % mounts ? 1 : 0));
  return simulate({ layout, depth: run.tasks, taskSeconds: (run.taskMs ?? 0) / 1000, profile: profiles[run.fs], strategy, seed, sharedCores, otherLoad, wakeUs, crowding });
}

/** Relative error of a prediction; figures both under `floor` count as equal. */
export function relError(pred, meas, floor = 0) {
  if (Math.abs(pred) <= floor && Math.abs(meas) <= floor) return 0;
  return (pred - meas) / Math.abs(meas || floor || 1);
}

export function check(runs, profiles, strategy, options) {
  const rows = [];
  for (const run of runs) {
    for (const f of ['fs', 'consumers', 'tasks', 'throughput']) if (run[f] === undefined) fail(`--check: a run lacks "${f}": ${JSON.stringify(run).slice(0, 200)}`);
    if (!Object.hasOwn(profiles, run.fs)) fail(`--check: no profile for fs ${JSON.stringify(run.fs)}`);
    const sim = simulateRun(run, profiles, strategy, { ...options, otherLoad: run.otherLoad ?? options.otherLoad });
    const row = { fs: run.fs, consumers: run.consumers, mounts: run.mounts, tasks: run.tasks, taskMs: run.taskMs ?? 0, figures: {} };
    const within = (f) => ({ ...f, ok: Math.abs(f.error) <= 0.25 });
    row.figures.throughput = within({ predicted: sim.throughput, measured: run.throughput, error: relError(sim.throughput, run.throughput) });
    // Lost ratios under 2% are both "few": compared as equal. A lost ratio is a count of few
    // events, measured no closer than its counting noise: within two standard errors of the
    // measured count of lost claims (√lost) it matches too (11 lost of 510 claims tried is
    // 2.2% ± 0.65%, so 25% of it is below what the run can tell).
    const measuredLost = run.lostRatio ?? run.lost / (run.lost + run.claims);
    const lost = within({ predicted: sim.lostRatio, measured: measuredLost, error: relError(sim.lostRatio, measuredLost, 0.02) });
    if (!lost.ok && run.lost != null && run.claims != null) {
      const noise = (2 * Math.sqrt(Math.max(1, run.lost))) / (run.lost + run.claims);
      if (Math.abs(sim.lostRatio - measuredLost) <= noise) Object.assign(lost, { ok: true, noise: Math.round(noise * 1e4) / 1e4 });
    }
    row.figures.lostRatio = lost;
    if (run.opsPerSecond != null) row.figures.opsPerSecond = within({ predicted: sim.syscallsPerSecond, measured: run.opsPerSecond, error: relError(sim.syscallsPerSecond, run.opsPerSecond) });
    row.ok = Object.values(row.figures).every((f) => f.ok);
    rows.push(row);
  }
  return rows;
}

function main() {
  const o = parse(process.argv.slice(2));
  if (o.help) {
    process.stdout.write(`${HELP}\n`);
    return;
  }
  const profiles = loadProfiles();
  const strategy = loadStrategy(o.strategy ?? 'main', o.sets);
  const seed = numbers('seed', o.seed ?? '1')[0];
  const otherLoad = o['other-load'] !== undefined ? numbers('other-load', o['other-load'], { integer: false })[0] : 0;
  if (otherLoad > 0.9) fail('--other-load: at most 0.9');
  if (o.check !== undefined) {
    const data = loadJson(o.check, 'real runs');
    const runs = Array.isArray(data) ? data : Array.isArray(data.runs) ? data.runs : [data];
    const sharedCores = o['shared-cores'] !== undefined ? numbers('shared-cores', o['shared-cores'], { min: 1 })[0] : (data.machine?.cores ?? 2);
    const load = o['other-load'] !== undefined ? otherLoad : (data.machine?.otherLoad ?? 0);
    const rows = check(runs, profiles, strategy, { seed, sharedCores, otherLoad: load });
    if (o.json) process.stdout.write(`${JSON.stringify(rows, null, 1)}\n`);
    else {
      const pct = (e) => `${e >= 0 ? '+' : ''}${(100 * e).toFixed(0)}%`;
      process.stdout.write('fs         cons  tasks taskMs | throughput pred/meas (err) | lost ratio pred/meas (err) | ops/s pred/meas (err)\n');
      for (const r of rows) {
        const f = r.figures;
        const ops = f.opsPerSecond ? `${f.opsPerSecond.predicted}/${f.opsPerSecond.measured} (${pct(f.opsPerSecond.error)})` : '-';
        process.stdout.write(
          `${r.fs.padEnd(10)} ${String(r.consumers).padStart(4)} ${String(r.tasks).padStart(6)} ${String(r.taskMs).padStart(6)} | ` +
            `${f.throughput.predicted.toFixed(1)}/${f.throughput.measured} (${pct(f.throughput.error)}) | ` +
            `${f.lostRatio.predicted.toFixed(3)}/${Number(f.lostRatio.measured).toFixed(3)} (${pct(f.lostRatio.error)}${f.lostRatio.noise ? `, within 2 s.e. ±${f.lostRatio.noise}` : ''}) | ${ops}${r.ok ? '' : '   <-- off by more than 25%'}\n`,
        );
      }
      const bad = rows.filter((r) => !r.ok).length;
      process.stdout.write(`${rows.length - bad} of ${rows.length} runs within 25%\n`);
    }
    process.exitCode = rows.every((r) => r.ok) ? 0 : 1;
    return;
  }
  const hostsList = numbers('hosts', o.hosts ?? '1', { min: 1 });
  const workersList = numbers('workers', o.workers ?? '1', { min: 1 });
  const taskList = numbers('task-seconds', o['task-seconds'] ?? '1', { integer: false });
  const fsList = (o.fs ?? 'moosefs').split(',');
  const sharedCores = o['shared-cores'] !== undefined ? numbers('shared-cores', o['shared-cores'], { min: 1 })[0] : null;
  const serverSpeed = o['server-speed'] !== undefined ? numbers('server-speed', o['server-speed'], { integer: false })[0] : 1;
  if (!(serverSpeed > 0)) fail('--server-speed: must be more than 0');
  const maxSeconds = o['max-seconds'] !== undefined ? numbers('max-seconds', o['max-seconds'], { integer: false })[0] : 1e7;
  if (!(maxSeconds > 0)) fail('--max-seconds: must be more than 0');
  // 'T': over one task time (a farm whose workers came up while the first tasks ran).
  const startSpreadSeconds = o['start-spread'] === 'T' ? 'T' : o['start-spread'] !== undefined ? numbers('start-spread', o['start-spread'], { integer: false })[0] : undefined;
  const taskJitter = o['task-jitter'] !== undefined ? numbers('task-jitter', o['task-jitter'], { integer: false })[0] : 0;
  if (taskJitter > 1) fail('--task-jitter: at most 1');
  const until = o.until !== undefined ? numbers('until', o.until, { integer: false })[0] : 1;
  if (!(until > 0 && until <= 1)) fail('--until: a share more than 0, at most 1');
  const perWorker = o['depth-per-worker'] !== undefined ? numbers('depth-per-worker', o['depth-per-worker'], { min: 1 })[0] : 10;
  if (o['depth-per-worker'] !== undefined && o.depth !== undefined) fail('--depth and --depth-per-worker: give one of them');
  const common = { until, strategy, seed, sharedCores, otherLoad, serverSpeed, maxSeconds, startSpreadSeconds, taskJitter };
  if (o.largest) {
    const out = [];
    for (const fs of fsList) {
      const profile = profileOf(profiles, fs);
      for (const taskSeconds of taskList) {
        const workers = workersList[0];
        let best = null;
        let stop = null;
        for (let hosts = 1; hosts <= 100_000; hosts *= 2) {
          const depth = o.depth !== undefined ? numbers('depth', o.depth, { min: 1 })[0] : perWorker * hosts * workers;
          const spread = startSpreadSeconds === 'T' ? taskSeconds : startSpreadSeconds;
          const r = simulate({ ...common, startSpreadSeconds: spread, hosts, workers, depth, taskSeconds, profile });
          // Busy in the steady window, and on time in all: the share done by then in no more
          // than 1.25 × what workers doing task after task take (half the start spread, then
          // the tasks), so that a start spent listing the whole queue counts too.
          const ideal = (spread ?? 0) / 2 + ((until * depth) / r.consumers) * taskSeconds;
          r.onTime = Math.round((ideal / r.seconds) * 1000) / 1000;
          if (r.efficiency >= 0.9 && r.onTime >= 0.8) best = r;
          else {
            stop = r;
            break;
          }
        }
        const why = stop === null ? 'none found' : stop.serverUtilisation >= 0.85 ? 'server saturated' : stop.efficiency >= 0.9 ? 'a slow start' : stop.lostRatio >= 0.5 ? 'lost claims and listings' : 'claiming and listing time';
        const row = { fs, taskSeconds, workersPerHost: workers, largest: best, next: stop, limit: why };
        out.push(row);
        if (!o.json) {
          const b = best ? `${best.consumers} workers (${best.hosts} × ${workers}): ${best.throughput} tasks/s, ${best.opsPerSecond} server ops/s, util ${best.serverUtilisation}, lost ${best.lostRatio}` : 'not even one host';
          const n = stop ? `${stop.consumers}: efficiency ${stop.efficiency}, on time ${stop.onTime}, util ${stop.serverUtilisation}, lost ${stop.lostRatio}` : '-';
          process.stdout.write(`${fs.padEnd(11)} T=${taskSeconds}s | largest kept busy: ${b} | next (${n}): ${why}\n`);
        }
      }
    }
    if (o.json) process.stdout.write(`${JSON.stringify(out, null, 1)}\n`);
    return;
  }
  const out = [];
  for (const fs of fsList) {
    const profile = profileOf(profiles, fs);
    for (const hosts of hostsList)
      for (const workers of workersList)
        for (const taskSeconds of taskList) {
          const depth = o.depth !== undefined ? numbers('depth', o.depth, { min: 1 })[0] : perWorker * hosts * workers;
          const r = simulate({ ...common, startSpreadSeconds: startSpreadSeconds === 'T' ? taskSeconds : startSpreadSeconds, hosts, workers, depth, taskSeconds, profile });
          out.push(r);
          if (!o.json) {
            if (out.length === 1) process.stdout.write('fs          hosts workers  depth  task s |  drain s   tasks/s  busy  lost ratio  server ops/s  syscalls/s  server util\n');
            process.stdout.write(
              `${fs.padEnd(11)} ${String(hosts).padStart(5)} ${String(workers).padStart(7)} ${String(depth).padStart(6)} ${String(taskSeconds).padStart(7)} | ` +
                `${String(r.seconds).padStart(8)} ${String(r.throughput).padStart(9)} ${(r.efficiency ?? 0).toFixed(2).padStart(5)} ${r.lostRatio.toFixed(3).padStart(11)} ${String(r.opsPerSecond).padStart(13)} ${String(r.syscallsPerSecond).padStart(11)} ${r.serverUtilisation.toFixed(3).padStart(12)}${r.drained ? '' : '  (not drained)'}\n`,
            );
          }
        }
  }
  if (o.json) process.stdout.write(`${JSON.stringify(out.length === 1 ? out[0] : out, null, 1)}\n`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
