// Small real farm runs to calibrate and check the simulation (sim/simulate.mjs --check).
// It publishes TASKS messages through mount A, starts C consumer processes split evenly over
// mounts A and B (sim/real-consumer.mjs: consume n=1 -> sleep TASK_MS -> ack), and decides
// "drained" through the rig's truth view. One JSON object per run, with the field names of
// bench/farm.mjs (task C): { fs, consumers, mounts, tasks, taskMs, seconds, throughput, lost,
// claims, lostRatio, listings }, plus the CPU the consumers and the rig's daemons used.
//   node sim/real-run.mjs --rig NAME [--consumers 1,2,4] [--tasks 300] [--task-ms 0] [--json FILE]
// The rig is read from DDMQ_NETFS (or /work/netfs.json); --rig local uses a folder in /tmp.
// It works in a fresh folder ddmq-i12-sim-<random> of the mount and removes it afterwards.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Broker } from '../dist/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i < 0 ? def : args[i + 1];
};
const rigName = opt('--rig', 'local');
const consumerCounts = opt('--consumers', '1,2,4').split(',').map(Number);
const tasks = Number(opt('--tasks', '300'));
const taskMs = Number(opt('--task-ms', '0'));
const jsonFile = opt('--json', null);
if (!consumerCounts.every((n) => Number.isInteger(n) && n >= 1) || !(Number.isInteger(tasks) && tasks >= 1) || !(taskMs >= 0)) {
  process.stderr.write('real-run: --consumers takes whole numbers of at least 1 (1,2,4), --tasks a whole number of at least 1, --task-ms a number of at least 0\n');
  process.exit(2);
}

const DAEMONS = {
  sshfs: /^(sshfs|ssh|sshd|sftp-server)$/,
  glusterfs: /^(glusterfs|glusterfsd)$/,
  moosefs: /^(mfsmount|mfsmaster|mfschunkserver)$/,
  local: /^$/,
};
function daemonCpuMs() {
  const re = DAEMONS[rigName] ?? /^$/;
  const ticks = {};
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      if (!re.test(comm)) continue;
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks[comm] = (ticks[comm] ?? 0) + (Number(f[11]) + Number(f[12])) * 10; // utime, stime (USER_HZ = 100)
    } catch {}
  }
  return ticks;
}

/** Busy and total CPU time of the machine so far (ms), from /proc/stat. */
function machineCpuMs() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = f;
  return { busy: (user + nice + system + irq + softirq + steal) * 10, total: (user + nice + system + idle + iowait + irq + softirq + steal) * 10 };
}

let rig;
if (rigName === 'local') {
  const dir = mkdtempSync(join(tmpdir(), 'ddmq-sim-local-'));
  rig = { name: 'local', a: dir, b: dir, truth: dir, tmp: dir };
} else {
  const all = JSON.parse(process.env.DDMQ_NETFS ?? readFileSync('/work/netfs.json', 'utf8'));
  rig = all.find((r) => r.name === rigName);
  if (!rig) {
    process.stderr.write(`real-run: no rig named ${rigName} in DDMQ_NETFS (have: ${all.map((r) => r.name).join(', ')})\n`);
    process.exit(2);
  }
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const results = [];
for (const consumers of consumerCounts) {
  const sub = `ddmq-i12-sim-${randomBytes(4).toString('hex')}`;
  const rootA = join(rig.a, sub);
  const rootB = join(rig.b, sub);
  const truth = join(rig.truth, sub);
  const local = mkdtempSync(join(tmpdir(), 'ddmq-sim-run-'));
  try {
    const broker = await Broker.open(rootA, { create: true });
    for (let i = 0; i < tasks; i++) await broker.publish('q', `t${i}`);
    const stop = join(local, 'stop');
    const kids = [];
    for (let c = 0; c < consumers; c++) {
      const root = c % 2 === 0 ? rootA : rootB;
      const kid = spawn(process.execPath, [join(here, 'real-consumer.mjs'), root, 'q', String(taskMs), stop, join(local, `c${c}.json`)], { stdio: ['ignore', 'ignore', 'inherit'] });
      kids.push(new Promise((r) => kid.on('exit', r)));
    }
    while (!Array.from({ length: consumers }, (_, c) => existsSync(join(local, `c${c}.json.ready`))).every(Boolean)) await sleep(10);
    const t0cpu = daemonCpuMs();
    const m0 = machineCpuMs();
    const t0 = performance.now();
    writeFileSync(`${stop}.go`, '');
    // Drained: no ready file and nothing in work/, as the truth view sees it.
    const qdir = join(truth, 'q');
    for (;;) {
      await sleep(10);
      const ready = readdirSync(qdir).filter((n) => !n.startsWith('.') && n.includes('.ddmq'));
      if (ready.length === 0 && (!existsSync(join(qdir, 'work')) || readdirSync(join(qdir, 'work')).length === 0)) break;
    }
    const seconds = (performance.now() - t0) / 1000;
    const t1cpu = daemonCpuMs();
    const m1 = machineCpuMs();
    const cpuDaemons = {};
    for (const [k, v] of Object.entries(t1cpu)) cpuDaemons[k] = +((v - (t0cpu[k] ?? 0)) / tasks).toFixed(3);
    writeFileSync(stop, '');
    await Promise.all(kids);
    let lost = 0, claims = 0, listings = 0, cpuConsumers = 0;
    const seen = new Set();
    for (let c = 0; c < consumers; c++) {
      const r = JSON.parse(readFileSync(join(local, `c${c}.json`), 'utf8'));
      lost += r.lost;
      claims += r.ids.length;
      listings += r.listings;
      cpuConsumers += r.cpuMs;
      for (const id of r.ids) seen.add(id);
    }
    if (seen.size !== tasks || claims !== tasks) process.stderr.write(`real-run: ${claims} acks of ${seen.size} distinct tasks, expected ${tasks}\n`);
    const run = {
      fs: rig.name, consumers, mounts: rig.a === rig.b ? 1 : 2, tasks, taskMs, seconds: +seconds.toFixed(3),
      throughput: +(tasks / seconds).toFixed(2), lost, claims, lostRatio: +(lost / (lost + claims)).toFixed(4), listings,
      consumerCpuMsPerTask: +(cpuConsumers / tasks).toFixed(3), daemonCpuMsPerTask: cpuDaemons,
      // The share of the machine's CPU that other programs (other users of the rigs) took meanwhile.
      otherLoad: +Math.max(0, (m1.busy - m0.busy - cpuConsumers - Object.values(cpuDaemons).reduce((a, b) => a + b, 0) * tasks) / (m1.total - m0.total)).toFixed(3),
    };
    results.push(run);
    process.stderr.write(`${JSON.stringify(run)}\n`);
  } finally {
    rmSync(join(rig.a, sub), { recursive: true, force: true });
    rmSync(local, { recursive: true, force: true });
  }
}
if (rig.tmp) rmSync(rig.tmp, { recursive: true, force: true });
const out = JSON.stringify(results, null, 1);
if (jsonFile) writeFileSync(jsonFile, `${out}\n`);
else process.stdout.write(`${out}\n`);
