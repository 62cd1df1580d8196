#!/usr/bin/env node
// Real runs for `npm run simulate -- --check`: node sim/fixture.mjs PLAIN.json... --ops OPS.json... [--command TEXT]
// PLAIN: bench/farm.mjs --json files (throughput, lost ratio, other load); OPS: the same
// sweeps made with --count-ops. strace slows the consumers down, so a --count-ops run's
// throughput is not the farm's: each plain run gets the metadata calls per task of its
// --count-ops counterpart (same rig, consumers, tasks, task time) as opsPerTask, and
// opsPerSecond = opsPerTask × its own throughput (what the farm makes without strace).
// Prints { command, note, machine, runs } (the fixture's form) on stdout.
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
const plain = [];
const ops = [];
let command = null;
let into = plain;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--ops') into = ops;
  else if (args[i] === '--command') command = args[++i];
  else into.push(args[i]);
}
if (plain.length === 0 || command === null) {
  process.stderr.write('usage: node sim/fixture.mjs PLAIN.json... [--ops OPS.json...] --command "how the runs were made"\n');
  process.exit(2);
}
const read = (file) => {
  let data;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    process.stderr.write(`fixture: ${file}: ${err.code ?? err.message}\n`);
    process.exit(2);
  }
  if (!Array.isArray(data)) {
    process.stderr.write(`fixture: ${file}: not a JSON array of bench/farm.mjs results\n`);
    process.exit(2);
  }
  return data;
};
const key = (r) => [r.fs, r.consumers, r.mounts, r.tasks, r.taskMs].join('/');
const counted = new Map();
for (const file of ops) for (const r of read(file)) if (r.opsPerSecond != null) counted.set(key(r), r);
const round = (x, d) => Math.round(x * 10 ** d) / 10 ** d;
const runs = [];
for (const file of plain) {
  for (const r of read(file)) {
    const run = {
      fs: r.fs, consumers: r.consumers, mounts: r.mounts, tasks: r.tasks, taskMs: r.taskMs, runs: r.runs,
      seconds: round(r.seconds, 3), throughput: round(r.throughput, 1), throughputs: r.throughputs?.map((t) => round(t, 1)),
      lost: r.lost, claims: r.claims, lostRatio: round(r.lostRatio, 4), listings: r.listings,
      otherLoad: round(r.otherLoad ?? 0, 3), otherLoads: r.otherLoads?.map((t) => round(t, 3)),
    };
    const c = counted.get(key(r));
    if (c) {
      run.opsPerTask = round(c.opsPerSecond / c.throughput, 3);
      run.opsPerSecond = round(run.opsPerTask * r.throughput, 1);
      run.stracedThroughput = round(c.throughput, 1);
    }
    runs.push(run);
  }
}
runs.sort((a, b) => a.fs.localeCompare(b.fs) || a.taskMs - b.taskMs || a.consumers - b.consumers);
const note =
  'Each run: the median of its repeats (bench/farm.mjs --repeat), other load as measured from /proc/stat during them. ' +
  'opsPerSecond: the metadata calls per task counted by strace in a separate --count-ops run of the same configuration (opsPerTask), times this run\'s own throughput.';
process.stdout.write(`${JSON.stringify({ command, note, machine: { cores: 2 }, runs }, null, 1)}\n`);
