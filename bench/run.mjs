#!/usr/bin/env node
// ddmq's benchmark: every workload against a floor (bench/floor.mjs) measured in the same
// run on the same file system; every figure the median of several runs.
//
//   npm run bench                      all workloads on tmpfs and a journaled ext4 image
//   npm run bench -- --quick           small sizes, tmpfs only: under a minute
//   npm run bench -- --fs tmpfs,ext4,disk --only 1,3,4 --runs 7
//
// It prints a table and writes the same figures to bench/results/latest.json.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Broker } from '../dist/index.js';
import { floorConsume, floorPublish, floorQueue } from './floor.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const CLI = join(HERE, '..', 'dist', 'cli', 'ddmq.cjs'); // package.json's bin
const CHILD = join(HERE, 'child.mjs');

const { values: opts } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    fs: { type: 'string' },
    only: { type: 'string' },
    runs: { type: 'string' },
    'w1-size': { type: 'string' },
    'w5-size': { type: 'string' },
    out: { type: 'string', default: join(HERE, 'results', 'latest.json') },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (opts.help) {
  console.log(`usage: npm run bench -- [--quick] [--fs tmpfs,ext4,disk] [--only 1,...,8,mem] [--runs N] [--out FILE]
  --quick   small sizes, tmpfs only (under a minute)
  --fs      file systems: tmpfs (/dev/shm), ext4 (a journaled ext4 image on a loop device; root only),
            disk (this machine's root disk, in /var/tmp)   [default: tmpfs,ext4 as root, else tmpfs]
  --only    workloads: 1 original 5k, 2 100k, 3 depth, 4 processes, 5 producers+consumers latency,
            6 CLI, 7 fsync, d durable publishing (W9-W11), 8 sshfs, mem (memory of a deep drain),
            h (W1 with task records vs without)   [default: all]
  --runs    runs per figure, at least 5 [5]
  --w1-size messages of workload 1 [5000] (the README's peer comparison uses 50000 on the root disk)
  --w5-size messages of workload 5 [20000, quick 4000] (at 4000 the JIT's warm-up is much of what W5 measures)`);
  process.exit(0);
}

const isRoot = process.getuid?.() === 0;
const RUNS = Math.max(5, Number(opts.runs ?? 5));
const Q = opts.quick;
const SIZE = {
  w1: Number(opts['w1-size'] ?? 5000),
  w2: Q ? 10_000 : 100_000,
  shallow: 2000,
  deep: Q ? 20_000 : 200_000,
  w4: Q ? 4000 : 20_000,
  w5: Number(opts['w5-size'] ?? (Q ? 4000 : 20_000)),
  w7: Q ? 300 : 1000,
  w8: Q ? 300 : 1000,
};
const only = new Set((opts.only ?? '1,h,2,3,4,5,6,7,d,8,mem').split(','));
const fsNames = (opts.fs ?? (Q || !isRoot ? 'tmpfs' : 'tmpfs,ext4')).split(',');
const say = (text) => process.stderr.write(`${text}\n`);
const now = () => performance.now();
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};
const round = (x, digits = 0) => Math.round(x * 10 ** digits) / 10 ** digits;
let serial = 0;
const fresh = (base) => {
  const dir = join(base, `run-${process.pid}-${serial++}`);
  fs.mkdirSync(dir);
  return dir;
};
const rm = (dir) => fs.rmSync(dir, { recursive: true, force: true });

// ---- file systems -------------------------------------------------------------------

function setUpFs(name) {
  if (name === 'tmpfs') return { name, label: 'tmpfs (/dev/shm)', base: fs.mkdtempSync('/dev/shm/ddmq-bench-'), down() { rm(this.base); } };
  if (name === 'disk') return { name, label: 'root disk (ext4, no journal)', base: fs.mkdtempSync('/var/tmp/ddmq-bench-'), down() { rm(this.base); } };
  if (name === 'ext4') {
    if (!isRoot) return null;
    const img = `/var/tmp/ddmq-bench-${process.pid}.img`;
    const mnt = fs.mkdtempSync('/tmp/ddmq-bench-ext4-');
    execFileSync('truncate', ['-s', '4G', img]);
    execFileSync('mkfs.ext4', ['-q', '-F', '-i', '4096', img]); // journaled, with inodes for 500k+ files
    execFileSync('mount', ['-o', 'loop', img, mnt]);
    return { name, label: 'ext4 with journal (loop image)', base: mnt, down() { spawnSync('umount', [mnt]); rm(mnt); rm(img); } };
  }
  throw new Error(`unknown file system ${name}`);
}

// ---- the work, for ddmq and for the floor ----------------------------------------------

async function ddmqBroker(root, options = {}) {
  const b = await Broker.open(root, { create: true, ...options });
  await b.createQueue('q');
  return b;
}

async function ddmqPublish(b, count) {
  for (let i = 0; i < count; i++) await b.publish('q', `task-${i}`);
}

async function ddmqDrain(b, limit = Infinity) {
  let n = 0;
  while (n < limit) {
    const [m] = await b.consume('q');
    if (!m) break;
    await b.ack(m);
    n++;
  }
  return n;
}

/** Runs `measure` for ddmq and the floor alternately, RUNS times each; medians of rates. */
async function paired(label, ddmqRun, floorRun) {
  const ours = [];
  const floor = [];
  for (let r = 0; r < RUNS; r++) {
    floor.push(await floorRun());
    ours.push(await ddmqRun());
  }
  const m = median(ours);
  const f = median(floor);
  say(`  ${label}: ${round(m)} msg/s, floor ${round(f)} msg/s, ratio ${round(m / f, 2)}`);
  return { msgs_per_s: round(m), floor_msgs_per_s: round(f), ratio: round(m / f, 3), runs: RUNS };
}

/**
 * W1 with task records (the history setting, on by default) against W1 without, in the
 * same run, in pairs; the broker's close (which writes the last records) is timed too.
 * The requirement: with records, at least 0.95 of the rate without.
 */
async function historyCost(base, count) {
  const once = async (history) => {
    const root = fresh(base);
    const t = now();
    const b = await Broker.open(root, { create: true });
    if (!history) await b.setSettings(undefined, { history: false });
    await b.createQueue('q');
    await ddmqPublish(b, count);
    const n = await ddmqDrain(b);
    b.close();
    const rate = (count / (now() - t)) * 1000;
    if (n !== count) throw new Error(`consumed ${n} of ${count}`);
    rm(root);
    return rate;
  };
  const on = [];
  const off = [];
  const ratios = [];
  for (let r = 0; r < RUNS; r++) {
    // In pairs, the order turned every other time (off-on, on-off, ...), so that neither
    // always runs second (after the other's removal of its tree); the ratio is the median
    // of the pairs' ratios, which a machine's load drifting between pairs does not move.
    const first = r % 2 === 0 ? false : true;
    const a = await once(first);
    const b = await once(!first);
    const [withRecords, without] = first ? [a, b] : [b, a];
    on.push(withRecords);
    off.push(without);
    ratios.push(withRecords / without);
  }
  const m = median(on);
  const f = median(off);
  const ratio = median(ratios);
  say(`  W1 with task records: ${round(m)} msg/s, without ${round(f)} msg/s, ratio ${round(ratio, 3)} (median of ${RUNS} pairs)`);
  // In the table, the "floor" column holds the rate without records, and the ratio is against it.
  return { msgs_per_s: round(m), floor_msgs_per_s: round(f), ratio: round(ratio, 3), without_history: true, runs: RUNS };
}

async function publishThenConsume(base, count, { fsync = false } = {}) {
  return paired(
    `publish+consume ${count}${fsync ? ' (fsync)' : ''}`,
    async () => {
      const root = fresh(base);
      const t = now();
      const b = await ddmqBroker(root, { fsync });
      await ddmqPublish(b, count);
      const n = await ddmqDrain(b);
      const rate = (count / (now() - t)) * 1000;
      if (n !== count) throw new Error(`consumed ${n} of ${count}`);
      rm(root);
      return rate;
    },
    async () => {
      const root = fresh(base);
      const t = now();
      const dir = floorQueue(root);
      floorPublish(dir, count, { fsync });
      const { consumed } = floorConsume(dir);
      const rate = (count / (now() - t)) * 1000;
      if (consumed !== count) throw new Error(`floor consumed ${consumed} of ${count}`);
      rm(root);
      return rate;
    },
  );
}

/**
 * W9-W11, durable publishing (fsync on), each run in a process of its own (durable.mjs)
 * with UV_THREADPOOL_SIZE=64, as the ddmq command runs. W9 (publishMany) and W10 (64
 * publish calls in flight) against the floor's publishing without fsync; W11 (one awaited
 * publish at a time) against a floor that does the same syncs naively, one file after
 * the other. The runs of each round go in a turned order.
 */
async function durable(base, results, fsLabel) {
  const many = Q ? 1000 : 5000;
  const one = Q ? 200 : 2000;
  const runOnce = (mode, count) => {
    const root = fresh(base);
    const r = spawnSync(process.execPath, [join(HERE, 'durable.mjs'), mode, root, String(count)], {
      encoding: 'utf8',
      env: { ...process.env, UV_THREADPOOL_SIZE: '64' },
    });
    rm(root);
    if (r.status !== 0) throw new Error(`durable.mjs ${mode}: ${r.stderr}`);
    const out = JSON.parse(r.stdout);
    if (out.p50_ms !== null) lat[mode].push(out);
    return (count / out.ms) * 1000;
  };
  const modes = [['floor', many], ['many', many], ['concurrent', many], ['floor-durable', one], ['one', one]];
  const rates = Object.fromEntries(modes.map(([m]) => [m, []]));
  const lat = Object.fromEntries(modes.map(([m]) => [m, []]));
  for (let r = 0; r < RUNS; r++) {
    const order = r % 2 === 0 ? modes : [...modes].reverse();
    for (const [mode, count] of order) rates[mode].push(runOnce(mode, count));
  }
  const m = Object.fromEntries(modes.map(([mode]) => [mode, median(rates[mode])]));
  const row = (name, mode, floor, target, floorName) => {
    const latency = lat[mode].length === 0 ? {} : { latency_p50_ms: round(median(lat[mode].map((x) => x.p50_ms)), 2), latency_p99_ms: round(median(lat[mode].map((x) => x.p99_ms)), 2) };
    say(`  ${name}: ${round(m[mode])} msg/s, ${floorName} ${round(m[floor])} msg/s, ratio ${round(m[mode] / m[floor], 3)} (target ${target})${latency.latency_p50_ms === undefined ? '' : `; a call takes p50 ${latency.latency_p50_ms} ms, p99 ${latency.latency_p99_ms} ms`}`);
    results.push({ name, fs: fsLabel, msgs_per_s: round(m[mode]), floor_msgs_per_s: round(m[floor]), ratio: round(m[mode] / m[floor], 3), target, floor: floorName, runs: RUNS, ...latency });
  };
  row(`W9 durable publishMany ${many}`, 'many', 'floor', '>= 0.3 x floor without fsync', 'floor without fsync');
  row(`W10 durable publish, 64 in flight, ${many}`, 'concurrent', 'floor', '>= 0.2 x floor without fsync', 'floor without fsync');
  row(`W11 durable publish, one at a time, ${one}`, 'one', 'floor-durable', '>= 1.0 x naive durable floor', 'naive durable floor');
}

async function depth(base, results, fsLabel) {
  const take = 2000;
  const shallow = await paired(
    `depth: first ${take} of ${SIZE.shallow}`,
    async () => {
      const root = fresh(base);
      await ddmqPublish(await ddmqBroker(root), SIZE.shallow);
      const b = await Broker.open(root);
      const t = now();
      await ddmqDrain(b, take);
      const rate = (take / (now() - t)) * 1000;
      rm(root);
      return rate;
    },
    async () => {
      const root = fresh(base);
      const dir = floorQueue(root);
      floorPublish(dir, SIZE.shallow);
      const t = now();
      floorConsume(dir, take);
      const rate = (take / (now() - t)) * 1000;
      rm(root);
      return rate;
    },
  );
  // One deep queue of each kind, with room for every run's 2 × 2,000.
  const deepCount = SIZE.deep + RUNS * 2 * take;
  say(`  filling a queue of ${deepCount} (ddmq) and one for the floor...`);
  const oursRoot = fresh(base);
  const setupStart = now();
  await ddmqPublish(await ddmqBroker(oursRoot), deepCount);
  const fillRate = (deepCount / (now() - setupStart)) * 1000;
  const floorRoot = fresh(base);
  const floorDir = floorQueue(floorRoot);
  floorPublish(floorDir, deepCount);
  const steady = [];
  const floorSteady = [];
  const listing = [];
  const deep = await paired(
    `depth: first ${take} of ${SIZE.deep}`,
    async () => {
      const listed = [];
      const b = await Broker.open(oursRoot, { log: (_l, text) => text.startsWith('listed') && listed.push(Number(/in ([\d.]+) ms/.exec(text)[1])) });
      let t = now();
      await ddmqDrain(b, take);
      const rate = (take / (now() - t)) * 1000;
      t = now();
      await ddmqDrain(b, take); // the next 2,000, from the listing in hand
      steady.push((take / (now() - t)) * 1000);
      listing.push(listed[0]);
      return rate;
    },
    async () => {
      let t = now();
      const names = { names: fs.readdirSync(floorDir), next: 0 };
      floorConsume(floorDir, take, undefined, names);
      const rate = (take / (now() - t)) * 1000;
      t = now();
      floorConsume(floorDir, take, undefined, names); // the next 2,000, from the same listing
      floorSteady.push((take / (now() - t)) * 1000);
      return rate;
    },
  );
  rm(floorRoot);
  results.push({ name: `W3 depth: first ${take} of a queue of ${SIZE.shallow}`, fs: fsLabel, ...shallow });
  results.push({
    name: `W3 depth: first ${take} of a queue of ${SIZE.deep}`,
    fs: fsLabel,
    ...deep,
    deep_over_shallow: round(deep.msgs_per_s / shallow.msgs_per_s, 3),
    floor_deep_over_shallow: round(deep.floor_msgs_per_s / shallow.floor_msgs_per_s, 3),
    next_2000_msgs_per_s: round(median(steady)),
    steady_deep_over_shallow: round(median(steady) / shallow.msgs_per_s, 3),
    floor_next_2000_msgs_per_s: round(median(floorSteady)),
    floor_steady_deep_over_shallow: round(median(floorSteady) / shallow.floor_msgs_per_s, 3),
    first_listing_ms: round(median(listing), 1),
    fill_msgs_per_s: round(fillRate),
    target: 'deep >= 0.8 x shallow',
  });
  say(`  deep/shallow ${round(deep.msgs_per_s / shallow.msgs_per_s, 2)} (floor ${round(deep.floor_msgs_per_s / shallow.floor_msgs_per_s, 2)}); next 2000 from the listing in hand ${round(median(steady))} msg/s; first listing ${round(median(listing), 1)} ms`);
  return oursRoot; // what is left (>= SIZE.deep messages) is drained by the memory test
}

// ---- processes ----------------------------------------------------------------------------

function startChild(args) {
  const p = spawn(process.execPath, [CHILD, ...args.map(String)], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  p.stdout.setEncoding('utf8').on('data', (d) => (out += d));
  const ready = new Promise((resolve) => {
    const check = () => (out.startsWith('ready\n') ? resolve() : p.stdout.once('data', check));
    check();
  });
  const done = new Promise((resolve, reject) =>
    p.on('close', (code) => (code === 0 ? resolve(JSON.parse(out.slice('ready\n'.length))) : reject(new Error(`child ${args.join(' ')} exited ${code}`)))),
  );
  return { p, ready, done, go: () => p.stdin.end('go\n') };
}

async function drainWith(base, procs, impl) {
  const root = fresh(base);
  if (impl === 'ddmq') await ddmqPublish(await ddmqBroker(root), SIZE.w4);
  else floorPublish(floorQueue(root), SIZE.w4);
  const children = Array.from({ length: procs }, () => startChild(['drain', root, impl]));
  await Promise.all(children.map((c) => c.ready));
  const t = performance.timeOrigin + now();
  children.forEach((c) => c.go());
  const outs = await Promise.all(children.map((c) => c.done));
  const consumed = outs.reduce((a, o) => a + o.consumed, 0);
  if (consumed !== SIZE.w4) throw new Error(`${impl}: ${procs} processes consumed ${consumed} of ${SIZE.w4}`);
  const lost = outs.reduce((a, o) => a + o.lost, 0);
  rm(root);
  return { rate: (SIZE.w4 / (Math.max(...outs.map((o) => o.ended)) - t)) * 1000, lost };
}

async function processes(base, results, fsLabel) {
  let single;
  for (const procs of [1, 2, 4, 8]) {
    const lost = [];
    const floorLost = [];
    const r = await paired(
      `${SIZE.w4} drained by ${procs} process${procs > 1 ? 'es' : ''}`,
      async () => {
        const x = await drainWith(base, procs, 'ddmq');
        lost.push(x.lost);
        return x.rate;
      },
      async () => {
        const x = await drainWith(base, procs, 'floor');
        floorLost.push(x.lost);
        return x.rate;
      },
    );
    if (procs === 1) single = r.msgs_per_s;
    const lostShare = median(lost) / (SIZE.w4 + median(lost));
    results.push({
      name: `W4 ${SIZE.w4} drained by ${procs} consumer process${procs > 1 ? 'es' : ''}`,
      fs: fsLabel,
      ...r,
      over_one_process: round(r.msgs_per_s / single, 3),
      lost_claims: median(lost),
      lost_claims_share: round(lostShare, 4),
      floor_lost_claims: median(floorLost),
      target: procs > 1 ? '>= 0.9 x one process; lost claims < 10%' : undefined,
    });
    say(`    vs one process ${round(r.msgs_per_s / single, 2)}; lost claims ${median(lost)} (${round(lostShare * 100, 1)}%), floor ${median(floorLost)}`);
  }
}

async function liveLatency(base, results, fsLabel) {
  const lat = { ddmq: [], floor: [] };
  // CPU time of the four processes a message: on 2 cores the four compete for the CPU, so
  // the rate follows it; and it moves much less than the rate on a shared, noisy machine.
  const cpu = { ddmq: [], floor: [] };
  const run = async (impl) => {
    const root = fresh(base);
    if (impl === 'ddmq') await ddmqBroker(root);
    else floorQueue(root);
    const done = join(root, 'producers-done');
    const producers = [0, 1].map((i) => startChild(['produce', root, impl, SIZE.w5 / 2, i + 1]));
    const consumers = [0, 1].map(() => startChild(['follow', root, impl, done]));
    const all = [...producers, ...consumers];
    await Promise.all(all.map((c) => c.ready));
    const t = performance.timeOrigin + now();
    all.forEach((c) => c.go());
    await Promise.all(producers.map((c) => c.done));
    fs.writeFileSync(done, '');
    const outs = await Promise.all(consumers.map((c) => c.done));
    const latencies = outs.flatMap((o) => o.latencies);
    if (latencies.length !== SIZE.w5) throw new Error(`${impl}: consumed ${latencies.length} of ${SIZE.w5}`);
    lat[impl].push({ p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99) });
    cpu[impl].push(([...await Promise.all(producers.map((c) => c.done)), ...outs].reduce((a, o) => a + o.cpuMs, 0) * 1000) / SIZE.w5);
    rm(root);
    return (SIZE.w5 / (Math.max(...outs.map((o) => o.ended)) - t)) * 1000;
  };
  const r = await paired(`2 producers + 2 consumers, ${SIZE.w5}`, () => run('ddmq'), () => run('floor'));
  const p = (impl, q) => round(median(lat[impl].map((x) => x[q])), 2);
  results.push({
    name: `W5 2 producers + 2 consumers at once, ${SIZE.w5}`,
    fs: fsLabel,
    ...r,
    latency_p50_ms: p('ddmq', 'p50'),
    latency_p99_ms: p('ddmq', 'p99'),
    floor_latency_p50_ms: p('floor', 'p50'),
    floor_latency_p99_ms: p('floor', 'p99'),
    cpu_us_per_msg: round(median(cpu.ddmq), 1),
    floor_cpu_us_per_msg: round(median(cpu.floor), 1),
    floor_cpu_over_ddmq: round(median(cpu.floor) / median(cpu.ddmq), 3),
  });
  say(`    latency p50 ${p('ddmq', 'p50')} ms, p99 ${p('ddmq', 'p99')} ms (floor ${p('floor', 'p50')} / ${p('floor', 'p99')} ms)`);
  say(`    CPU a message, 4 processes: ${round(median(cpu.ddmq), 1)} us (floor ${round(median(cpu.floor), 1)} us, floor/ddmq ${round(median(cpu.floor) / median(cpu.ddmq), 2)})`);
}

async function memory(root, results, fsLabel) {
  const b = await Broker.open(root);
  const depthNow = (await b.counts('q'))[0].ready;
  const c = startChild(['drain', root, 'ddmq']);
  await c.ready;
  c.go();
  const out = await c.done;
  results.push({ name: `memory: one consumer draining a queue of ${depthNow}`, fs: fsLabel, max_rss_mib: round(out.maxRssMiB, 1), consumed: out.consumed, target: '< 150 MiB' });
  say(`  memory: draining ${depthNow} messages, max RSS ${round(out.maxRssMiB, 1)} MiB`);
}

// ---- the CLI --------------------------------------------------------------------------------

async function cli(base) {
  const root = fresh(base);
  const b = await ddmqBroker(root);
  await ddmqPublish(b, RUNS * 2 + 2);
  const time = (args) => {
    const t = now();
    const r = spawnSync(process.execPath, args, { stdio: 'ignore' });
    if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}`);
    return now() - t;
  };
  const bare = [];
  const pub = [];
  const con = [];
  time(['-e', '']); // warm the page cache
  for (let r = 0; r < RUNS * 2; r++) {
    bare.push(time(['-e', '']));
    pub.push(time([CLI, 'publish', root, 'q', 'hello']));
    con.push(time([CLI, 'consume', root, 'q']));
  }
  rm(root);
  const m = { bare: median(bare), publish: median(pub), consume: median(con) };
  say(`  CLI: node -e "" ${round(m.bare, 1)} ms, ddmq publish ${round(m.publish, 1)} ms (${round(m.publish / m.bare, 2)}x), consume ${round(m.consume, 1)} ms (${round(m.consume / m.bare, 2)}x)`);
  return [
    { name: 'W6 CLI: one ddmq publish', ms: round(m.publish, 1), floor_ms: round(m.bare, 1), times_bare_start: round(m.publish / m.bare, 2), msgs_per_s: round(1000 / m.publish, 1), floor_msgs_per_s: round(1000 / m.bare, 1), ratio: round(m.bare / m.publish, 3), target: '<= 1.4 x node -e ""' },
    { name: 'W6 CLI: one ddmq consume', ms: round(m.consume, 1), floor_ms: round(m.bare, 1), times_bare_start: round(m.consume / m.bare, 2), msgs_per_s: round(1000 / m.consume, 1), floor_msgs_per_s: round(1000 / m.bare, 1), ratio: round(m.bare / m.consume, 3), target: '<= 1.4 x node -e ""' },
  ];
}

// ---- sshfs ----------------------------------------------------------------------------------

function sshfsUp() {
  const script = join(HERE, '..', '..', 'shared', 'netfs', 'sshfs-up.sh');
  if (!isRoot || !fs.existsSync(script)) return { skipped: !isRoot ? 'needs root' : `no ${script}` };
  const r = spawnSync('bash', [script], { encoding: 'utf8', env: { ...process.env, SSHFS_CACHE: 'on' } });
  if (r.status !== 0) return { skipped: `the sshfs rig did not come up: ${r.stderr.trim().split('\n').pop()}` };
  const env = Object.fromEntries(r.stdout.trim().split('\n').map((l) => l.split('=')).map(([k, v]) => [k, v.replace(/^'|'$/g, '')]));
  return { mount: env.NETFS_MOUNT_A, down: () => spawnSync('bash', [script.replace('-up', '-down'), '--purge']) };
}

// ---- main -----------------------------------------------------------------------------------

const machine = {
  cpu: os.cpus()[0]?.model,
  cores: os.cpus().length,
  memory_gib: round(os.totalmem() / 2 ** 30, 1),
  os: `${os.type()} ${os.release()}`,
  node: process.version,
};
const results = [];
const started = Date.now();
say(`ddmq bench: ${RUNS} runs per figure, file systems: ${fsNames.join(', ')}${Q ? ' (quick)' : ''}`);
for (const name of fsNames) {
  const target = setUpFs(name);
  if (target === null) {
    say(`skipping ${name}: needs root to make and mount the image`);
    continue;
  }
  say(`\n${target.label}`);
  try {
    if (only.has('1')) results.push({ name: `W1 publish ${SIZE.w1}, then consume+ack them`, fs: target.label, ...(await publishThenConsume(target.base, SIZE.w1)), target: '>= 0.7 x floor' });
    if (only.has('h')) results.push({ name: `W1 ${SIZE.w1} with task records vs without (history)`, fs: target.label, ...(await historyCost(target.base, SIZE.w1)), target: '>= 0.95 x without' });
    if (only.has('2')) results.push({ name: `W2 publish ${SIZE.w2}, then consume+ack them`, fs: target.label, ...(await publishThenConsume(target.base, SIZE.w2)), target: '>= 0.7 x floor' });
    let deepRoot;
    if (only.has('3') || only.has('mem')) deepRoot = await depth(target.base, results, target.label);
    if (only.has('mem')) await memory(deepRoot, results, target.label);
    if (deepRoot) rm(deepRoot);
    if (only.has('4')) await processes(target.base, results, target.label);
    if (only.has('5')) await liveLatency(target.base, results, target.label);
    if (only.has('7')) results.push({ name: `W7 fsync on: publish ${SIZE.w7}, then consume+ack`, fs: target.label, ...(await publishThenConsume(target.base, SIZE.w7, { fsync: true })) });
    if (only.has('d')) await durable(target.base, results, target.label);
  } finally {
    target.down();
  }
}
let cliResults = [];
if (only.has('6')) {
  const base = fs.mkdtempSync(join(os.tmpdir(), 'ddmq-bench-cli-'));
  try {
    cliResults = await cli(base);
  } finally {
    rm(base);
  }
}
if (only.has('8')) {
  const rig = sshfsUp();
  if (rig.skipped) {
    say(`\nskipping W8 (sshfs): ${rig.skipped}`);
    results.push({ name: `W8 sshfs: publish ${SIZE.w8}, then consume+ack`, fs: 'sshfs (loopback rig)', skipped: rig.skipped });
  } else {
    say('\nsshfs (loopback rig, cache on)');
    const base = fs.mkdtempSync(join(rig.mount, 'ddmq-bench-'));
    try {
      results.push({ name: `W8 sshfs: publish ${SIZE.w8}, then consume+ack`, fs: 'sshfs (loopback rig)', ...(await publishThenConsume(base, SIZE.w8)) });
    } finally {
      rm(base);
      rig.down();
    }
  }
}

const workloads = [...results.filter((r) => r.msgs_per_s !== undefined || r.skipped), ...cliResults].filter((r) => !r.name.startsWith('memory'));
const report = {
  date: new Date().toISOString(),
  command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
  seconds: round((Date.now() - started) / 1000, 1),
  runs_per_figure: RUNS,
  machine,
  workloads,
  cli: cliResults,
  memory: results.filter((r) => r.name.startsWith('memory')),
};
fs.mkdirSync(dirname(opts.out), { recursive: true });
fs.writeFileSync(opts.out, `${JSON.stringify(report, null, 2)}\n`);

// The table.
const rows = [['workload', 'file system', 'ddmq', 'floor', 'ratio', 'notes']];
for (const w of workloads) {
  if (w.skipped) {
    rows.push([w.name, w.fs, '-', '-', '-', `skipped: ${w.skipped}`]);
    continue;
  }
  const notes = [];
  if (w.deep_over_shallow !== undefined) notes.push(`deep/shallow ${w.deep_over_shallow} (floor ${w.floor_deep_over_shallow}); next 2000: ${w.steady_deep_over_shallow} (floor ${w.floor_steady_deep_over_shallow})`);
  if (w.over_one_process !== undefined) notes.push(`x1 proc ${w.over_one_process}; lost ${round(w.lost_claims_share * 100, 1)}%`);
  if (w.without_history) notes.push('floor column: the same W1 with history: false');
  if (w.latency_p50_ms !== undefined) notes.push(`p50 ${w.latency_p50_ms} ms, p99 ${w.latency_p99_ms} ms`);
  if (w.cpu_us_per_msg !== undefined) notes.push(`CPU/msg ${w.cpu_us_per_msg} us (floor ${w.floor_cpu_us_per_msg}, floor/ddmq ${w.floor_cpu_over_ddmq})`);
  if (w.floor !== undefined) notes.push(`floor: ${w.floor}; target ${w.target}`);
  if (w.times_bare_start !== undefined) notes.push(`${w.ms} ms = ${w.times_bare_start} x node start`);
  rows.push([w.name, w.fs ?? '', w.ms !== undefined ? `${w.ms} ms` : `${w.msgs_per_s}/s`, w.floor_ms !== undefined ? `${w.floor_ms} ms` : `${w.floor_msgs_per_s}/s`, String(w.ratio), notes.join('; ')]);
}
for (const m of report.memory) rows.push([m.name, m.fs, `${m.max_rss_mib} MiB`, '', '', `max RSS, target ${m.target}`]);
const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
console.log(`\n${rows.map((r) => `| ${r.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`).map((l, i) => (i === 1 ? `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|\n${l}` : l)).join('\n')}`);
console.log(`\n${report.command}: ${report.seconds} s; ${machine.cores} x ${machine.cpu}; Node ${machine.node}; results in ${opts.out}`);
