#!/usr/bin/env node
// A real farm on one root, seen through one or two mounts: D tasks are published through
// mount A (before the consumers start, or while they run with --live), then C consumer
// processes (bench/farm-child.mjs), split evenly over the mounts, each a loop of consume
// (n=1, with wait) -> task time -> ack, drain the queue. "Drained" is decided through the
// server's own view (the rig's truth folder; on local disk the folder itself): the
// clients' views may be stale. Each consumer writes the tasks it acked and its counters to
// a local file; the harness checks every task was acked exactly once.
//
//   npm run farm -- --rig moosefs --consumers 1,2,4,8,16 --tasks 5000 --repeat 3
//   npm run farm -- --root /var/tmp/farm --consumers 16 --task-ms 10 --json out.json
//
// One JSON object per line (and per consumer count) on stdout; see --help for the fields.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Broker } from '../dist/index.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const CHILD = join(HERE, 'farm-child.mjs');

const HELP = `usage: npm run farm -- (--rig NAME | --root DIR) [options]
  --rig NAME         a rig of DDMQ_NETFS (a JSON array of { name, a, b, truth }; when unset,
                     /work/netfs.json); the farm runs in a fresh folder under its mounts
  --root DIR         a local folder instead (both "mounts" are DIR); a fresh folder under it
  --mounts A,B       the mounts the consumers are split over: A, B or A,B [A,B]
  --consumers LIST   consumer processes, a sweep: e.g. 1,2,4,8,16 [16]
  --tasks D          tasks per run [5000]
  --task-ms T        each task's time: a sleep between consume and ack [0]
  --repeat K         runs per consumer count; the figures are their medians [1]
  --live             publish (through A) while the consumers run, not before
  --count-ops        run the consumers under strace -f -c and report opsPerSecond: the
                     file-system metadata calls per second they make (strace slows them down:
                     use its seconds and throughput only against other --count-ops runs)
  --json FILE        also write the array of results to FILE
  --acks DIR         keep each consumer's file (run-K-cC-I.json: { acked, won, lost, listings })
Output, one JSON line per consumer count:
  { fs, consumers, mounts, tasks, taskMs, seconds, throughput, lost, claims, lostRatio,
    listings, acked, duplicates, missing, runs, opsPerSecond?, otherLoad, throughputs,
    otherLoads, consumerCpuMsPerTask, daemonCpuMsPerTask }
  seconds: from "go" to drained (server's view); throughput: tasks per second; lost: claims
  lost to other consumers; claims: claims tried (won + lost); lostRatio: lost / claims;
  listings: listings of the ready folder made, all consumers; acked/duplicates/missing: by
  the task numbers the consumers wrote (a run with duplicates or missing tasks exits 1).
  otherLoad: the share of the machine's CPU (all cores) that other programs took from go to
  drained: /proc/stat's busy time less the consumers', the harness's, strace's and the rig's
  daemons' (by process name; other users of a shared rig count as the farm's there);
  throughputs, otherLoads: each run's; consumerCpuMsPerTask, daemonCpuMsPerTask: CPU per task.
  With --repeat, every figure is the median of the runs.`;

/** Metadata system calls: each goes to the server on a network file system (data reads and writes do not count). */
const METADATA_CALLS = new Set([
  'open', 'openat', 'openat2', 'creat', 'rename', 'renameat', 'renameat2', 'unlink', 'unlinkat', 'mkdir', 'mkdirat', 'rmdir',
  'stat', 'lstat', 'newfstatat', 'statx', 'access', 'faccessat', 'faccessat2', 'getdents', 'getdents64', 'readlink', 'readlinkat',
  'link', 'linkat', 'symlink', 'symlinkat', 'utimensat', 'chmod', 'fchmodat', 'fsync', 'fdatasync',
]);

/** The processes of each rig that serve its calls (FUSE clients, servers): their CPU is the farm's, not other programs'. */
const DAEMONS = {
  sshfs: /^(sshfs|ssh|sshd|sftp-server)$/,
  glusterfs: /^(glusterfs|glusterfsd)$/,
  moosefs: /^(mfsmount|mfsmaster|mfschunkserver)$/,
};

/** CPU time (ms) used so far by the processes whose name matches `re`, by name; and by the processes `pids`. */
function processCpuMs(re, pids = []) {
  const byName = {};
  let ofPids = 0;
  const wanted = new Set(pids.map(String));
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(pid)) continue;
    let stat;
    try {
      stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const isDaemon = re !== undefined && re.test(comm);
    if (!isDaemon && !wanted.has(pid)) continue;
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ms = (Number(f[11]) + Number(f[12])) * 10; // utime + stime, in ticks of 10 ms (USER_HZ = 100)
    if (isDaemon) byName[comm] = (byName[comm] ?? 0) + ms;
    else ofPids += ms;
  }
  return { byName, ofPids };
}

/** Busy and total CPU time of the whole machine so far (ms, all cores), from /proc/stat. */
function machineCpuMs() {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = f;
  return { busy: (user + nice + system + irq + softirq + steal) * 10, total: (user + nice + system + idle + iowait + irq + softirq + steal) * 10 };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const messageCount = (dir) => {
  try {
    return fs.readdirSync(dir).filter((n) => n.includes('.ddmq')).length;
  } catch (err) {
    if (err.code === 'ENOENT') return 0;
    throw err;
  }
};

/** Where a farm runs: the rig (or local folder) and its three views. */
export function resolveTarget({ rig, root }) {
  if ((rig === undefined) === (root === undefined)) throw new Error('give either --rig NAME or --root DIR');
  if (root !== undefined) {
    if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) throw new Error(`--root ${root}: not a folder`);
    return { fs: 'local', a: root, b: root, truth: root };
  }
  const source = process.env.DDMQ_NETFS ? 'DDMQ_NETFS' : '/work/netfs.json';
  let rigs;
  try {
    rigs = JSON.parse(process.env.DDMQ_NETFS ?? fs.readFileSync('/work/netfs.json', 'utf8'));
  } catch (err) {
    throw new Error(`--rig ${rig}: cannot read the rigs from ${source}: ${err.message}`);
  }
  const found = Array.isArray(rigs) ? rigs.find((r) => r && r.name === rig) : undefined;
  if (!found) throw new Error(`--rig ${rig}: no such rig in ${source} (it has: ${(Array.isArray(rigs) ? rigs : []).map((r) => r?.name).join(', ') || 'none'})`);
  for (const k of ['a', 'b', 'truth']) if (typeof found[k] !== 'string') throw new Error(`--rig ${rig}: its "${k}" in ${source} is not a path`);
  return { fs: found.name, a: found.a, b: found.b, truth: found.truth };
}

function spawnChild(args) {
  const p = spawn(process.execPath, [CHILD, ...args.map(String)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout.setEncoding('utf8').on('data', (d) => (out += d));
  p.stderr.setEncoding('utf8').on('data', (d) => (err += d));
  const ready = new Promise((resolve, reject) => {
    const check = () => out.includes('ready\n') && resolve();
    p.stdout.on('data', check);
    p.on('close', (code) => reject(new Error(`farm-child ${args[0]} exited (${code}) before it was ready: ${err.trim()}`)));
  });
  const exited = new Promise((resolve) => p.on('close', (code, signal) => resolve({ code, signal, err })));
  return { p, ready, exited, say: (line) => p.stdin.write(`${line}\n`) };
}

/** Attaches strace -f -c to the processes; stop() detaches it and returns the metadata calls it counted. */
async function attachStrace(pids, outFile) {
  const p = spawn('strace', ['-f', '-c', '-o', outFile, ...pids.flatMap((pid) => ['-p', String(pid)])], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr.setEncoding('utf8').on('data', (d) => (err += d));
  const exited = new Promise((resolve, reject) => {
    p.on('error', (e) => reject(new Error(`--count-ops needs strace: ${e.message}`)));
    p.on('close', resolve);
  });
  // strace says "Process N attached" for each one once it is in place.
  const deadline = Date.now() + 10_000;
  while ((err.match(/attached/g) ?? []).length < pids.length) {
    if (Date.now() > deadline || p.exitCode !== null) throw new Error(`strace did not attach: ${err.trim()}`);
    await sleep(20);
  }
  const stop = async () => {
    p.kill('SIGINT');
    await exited;
    let calls = 0;
    for (const line of fs.readFileSync(outFile, 'utf8').split('\n')) {
      const cols = line.trim().split(/\s+/);
      // % time, seconds, usecs/call, calls, [errors,] syscall
      if (cols.length >= 5 && /^\d/.test(cols[0]) && METADATA_CALLS.has(cols.at(-1))) calls += Number(cols[3]);
    }
    return calls;
  };
  stop.pid = p.pid;
  return stop;
}

/**
 * One run: a fresh root under target.a/`top` (which must exist), D tasks, C consumers.
 * Returns its figures; with acksDir, each consumer's file is kept there; with keep, the
 * root is left in place and its paths returned as `root` ({ a, truth }).
 */
export async function runOnce(target, top, { consumers, mounts, tasks, taskMs, live, countOps, acksDir, tag, keep = false }) {
  const name = `run-${tag}-${randomUUID().slice(0, 6)}`;
  const rootOf = (m) => join(m === 'B' ? target.b : target.a, top, name);
  const publisher = await Broker.open(rootOf('A'), { create: true });
  await publisher.createQueue('q');
  if (!live) await publisher.publishMany('q', Array.from({ length: tasks }, (_, i) => String(i)));
  publisher.close();
  const local = fs.mkdtempSync(join(os.tmpdir(), 'ddmq-farm-'));
  const stopFile = join(local, 'stop');
  try {
    const kids = Array.from({ length: consumers }, (_, i) => {
      // Split evenly: the first half through the first mount, the rest through the second.
      const m = mounts[Math.floor((i * mounts.length) / consumers)];
      return { m, file: join(local, `c${i}.json`), ...spawnChild(['consume', rootOf(m), 'q', join(local, `c${i}.json`), stopFile, taskMs]) };
    });
    const producer = live ? spawnChild(['produce', rootOf('A'), 'q', join(local, 'producer.json'), tasks]) : null;
    const all = producer ? [...kids, producer] : kids;
    await Promise.all(all.map((k) => k.ready));
    const stopStrace = countOps ? await attachStrace(kids.map((k) => k.p.pid), join(local, 'strace.txt')) : null;

    // The machine's CPU and the rig's daemons' (and strace's) from go to drained: what is
    // left of the machine's busy time once the farm's own is taken off is other programs'.
    const daemons = DAEMONS[target.fs];
    const ownPids = stopStrace ? [stopStrace.pid] : [];
    const machine0 = machineCpuMs();
    const procs0 = processCpuMs(daemons, ownPids);
    const self0 = process.cpuUsage();
    const started = performance.now();
    for (const k of all) k.say('go');
    const truthQ = join(target.truth, top, name, 'q');
    const left = () => messageCount(truthQ) + messageCount(join(truthQ, 'work')) + messageCount(join(truthQ, 'delayed'));
    let producerDone = producer === null;
    producer?.exited.then(() => (producerDone = true));
    // A guard against a hang only.
    const deadline = Date.now() + Math.max(600_000, tasks * (taskMs + 50));
    while (!producerDone || left() > 0) {
      if (Date.now() > deadline) throw new Error(`the consumers did not drain the queue: ${left()} messages left`);
      if (kids.some((k) => k.p.exitCode !== null)) throw new Error(`a consumer ended early: ${(await Promise.race(kids.map((k) => k.exited))).err.trim()}`);
      await sleep(target.fs === 'local' ? 20 : 100);
    }
    const seconds = (performance.now() - started) / 1000;
    const machine1 = machineCpuMs();
    const procs1 = processCpuMs(daemons, ownPids);
    const selfCpu = process.cpuUsage(self0);
    const metadataCalls = stopStrace ? await stopStrace() : null;
    fs.writeFileSync(stopFile, '');
    for (const k of kids) k.say('stop');
    const ends = await Promise.all(all.map((k) => k.exited));
    for (const e of ends) if (e.code !== 0) throw new Error(`a farm process failed (${e.code ?? e.signal}): ${e.err.trim()}`);

    const seen = new Map();
    let won = 0;
    let lost = 0;
    let listings = 0;
    let consumerCpuMs = 0;
    for (const [i, k] of kids.entries()) {
      const r = JSON.parse(fs.readFileSync(k.file, 'utf8'));
      if (acksDir) fs.copyFileSync(k.file, join(acksDir, `run-${tag}-c${consumers}-${i}.json`));
      won += r.won;
      lost += r.lost;
      listings += r.listings;
      consumerCpuMs += r.cpuMs;
      for (const t of r.acked) seen.set(t, (seen.get(t) ?? 0) + 1);
    }
    const duplicates = [...seen.values()].filter((n) => n > 1).length;
    let missing = 0;
    for (let i = 0; i < tasks; i++) if (!seen.has(String(i))) missing++;
    const claims = won + lost;
    const daemonCpuMs = {};
    for (const [name, ms] of Object.entries(procs1.byName)) daemonCpuMs[name] = ms - (procs0.byName[name] ?? 0);
    const farmCpuMs = consumerCpuMs + (selfCpu.user + selfCpu.system) / 1000 + Object.values(daemonCpuMs).reduce((a, b) => a + b, 0) + (procs1.ofPids - procs0.ofPids);
    const machineMs = machine1.total - machine0.total;
    const result = {
      seconds, throughput: tasks / seconds, lost, claims, lostRatio: claims ? lost / claims : 0, listings, acked: won, duplicates, missing,
      // The share of the machine (all cores) that other programs took during the run.
      otherLoad: machineMs > 0 ? Math.min(1, Math.max(0, (machine1.busy - machine0.busy - farmCpuMs) / machineMs)) : 0,
      consumerCpuMsPerTask: consumerCpuMs / tasks,
      daemonCpuMsPerTask: Object.fromEntries(Object.entries(daemonCpuMs).map(([k, v]) => [k, v / tasks])),
    };
    if (metadataCalls !== null) result.opsPerSecond = metadataCalls / seconds;
    if (keep) result.root = { a: rootOf('A'), truth: join(target.truth, top, name) };
    return result;
  } finally {
    fs.rmSync(local, { recursive: true, force: true });
    // Through the mount, never the server's folder; with `keep`, the caller removes it.
    if (!keep) fs.rmSync(rootOf('A'), { recursive: true, force: true });
  }
}

/** The sweep: for each consumer count, `repeat` runs and their medians. */
export async function runFarm(options) {
  const target = resolveTarget(options);
  const top = `ddmq-farm-${randomUUID().slice(0, 8)}`;
  fs.mkdirSync(join(target.a, top));
  const results = [];
  try {
    for (const consumers of options.consumers) {
      const runs = [];
      for (let k = 0; k < options.repeat; k++) runs.push(await runOnce(target, top, { ...options, consumers, tag: `${consumers}-${k}` }));
      const med = (key) => median(runs.map((r) => r[key]));
      const result = {
        fs: target.fs,
        consumers,
        mounts: options.mounts.join(','),
        tasks: options.tasks,
        taskMs: options.taskMs,
        seconds: med('seconds'),
        throughput: med('throughput'),
        lost: med('lost'),
        claims: med('claims'),
        lostRatio: med('lostRatio'),
        listings: med('listings'),
        acked: med('acked'),
        duplicates: Math.max(...runs.map((r) => r.duplicates)),
        missing: Math.max(...runs.map((r) => r.missing)),
        runs: runs.length,
      };
      if (options.countOps) result.opsPerSecond = med('opsPerSecond');
      result.otherLoad = med('otherLoad');
      result.throughputs = runs.map((r) => r.throughput);
      result.otherLoads = runs.map((r) => r.otherLoad);
      result.consumerCpuMsPerTask = med('consumerCpuMsPerTask');
      const names = [...new Set(runs.flatMap((r) => Object.keys(r.daemonCpuMsPerTask)))];
      result.daemonCpuMsPerTask = Object.fromEntries(names.map((n) => [n, median(runs.map((r) => r.daemonCpuMsPerTask[n] ?? 0))]));
      results.push(result);
      options.onResult?.(result);
    }
  } finally {
    fs.rmSync(join(target.a, top), { recursive: true, force: true });
  }
  return results;
}

function positiveInts(flag, text, { list = true } = {}) {
  const xs = list ? String(text).split(',').map((s) => s.trim()) : [String(text).trim()];
  if (xs.some((x) => !/^[1-9][0-9]*$/.test(x))) throw new Error(`${flag} ${text}: give ${list ? 'whole numbers of at least 1, separated by commas' : 'a whole number of at least 1'}`);
  return xs.map(Number);
}

async function main() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        rig: { type: 'string' },
        root: { type: 'string' },
        mounts: { type: 'string', default: 'A,B' },
        consumers: { type: 'string', default: '16' },
        tasks: { type: 'string', default: '5000' },
        'task-ms': { type: 'string', default: '0' },
        repeat: { type: 'string', default: '1' },
        live: { type: 'boolean', default: false },
        'count-ops': { type: 'boolean', default: false },
        json: { type: 'string' },
        acks: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (err) {
    throw new Error(`${err.message} (see --help)`);
  }
  if (values.help) {
    console.log(HELP);
    return;
  }
  const mounts = values.mounts.split(',').map((m) => m.trim());
  if (mounts.length === 0 || mounts.length > 2 || mounts.some((m) => m !== 'A' && m !== 'B') || new Set(mounts).size !== mounts.length) {
    throw new Error(`--mounts ${values.mounts}: give A, B or A,B`);
  }
  if (!/^[0-9]+$/.test(values['task-ms'])) throw new Error(`--task-ms ${values['task-ms']}: give a whole number of milliseconds`);
  if (values.acks !== undefined && !fs.existsSync(values.acks)) throw new Error(`--acks ${values.acks}: no such folder`);
  // Checked before the run, not found missing after it.
  if (values.json) {
    const folder = dirname(resolve(values.json));
    if (!fs.existsSync(folder)) throw new Error(`--json ${values.json}: the folder ${folder} does not exist`);
  }
  const results = await runFarm({
    rig: values.rig,
    root: values.root,
    mounts,
    consumers: positiveInts('--consumers', values.consumers),
    tasks: positiveInts('--tasks', values.tasks, { list: false })[0],
    taskMs: Number(values['task-ms']),
    repeat: positiveInts('--repeat', values.repeat, { list: false })[0],
    live: values.live,
    countOps: values['count-ops'],
    acksDir: values.acks,
    onResult: (r) => console.log(JSON.stringify(r)),
  });
  if (values.json) fs.writeFileSync(values.json, `${JSON.stringify(results, null, 2)}\n`);
  if (results.some((r) => r.duplicates > 0 || r.missing > 0)) {
    console.error('farm: a task was acked twice or not at all (see "duplicates" and "missing")');
    process.exitCode = 1;
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === fs.realpathSync(process.argv[1])) {
  main().catch((err) => {
    console.error(`farm: ${err.message}`);
    process.exitCode = 2;
  });
}
