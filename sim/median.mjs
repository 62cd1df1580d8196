// Medians of repeated real runs: node sim/median.mjs FILE... > OUT.json
// Groups the runs of the JSON files (arrays of sim/real-run.mjs or bench/farm.mjs runs) by
// fs, consumers, mounts, tasks and taskMs, and keeps the median of each numeric figure.
import { readFileSync } from 'node:fs';

const files = process.argv.slice(2);
if (files.length === 0) {
  process.stderr.write('usage: node sim/median.mjs FILE... (JSON arrays of real runs)\n');
  process.exit(2);
}
const groups = new Map();
for (const file of files) {
  for (const run of JSON.parse(readFileSync(file, 'utf8'))) {
    const key = [run.fs, run.consumers, run.mounts, run.tasks, run.taskMs].join('/');
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(run);
  }
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const out = [];
for (const runs of groups.values()) {
  const m = { ...runs[0], repeats: runs.length };
  for (const [k, v] of Object.entries(runs[0])) if (typeof v === 'number' && !['consumers', 'mounts', 'tasks', 'taskMs'].includes(k)) m[k] = +median(runs.map((r) => r[k])).toFixed(4);
  delete m.daemonCpuMsPerTask;
  out.push(m);
}
out.sort((a, b) => a.fs.localeCompare(b.fs) || a.taskMs - b.taskMs || a.consumers - b.consumers);
process.stdout.write(`${JSON.stringify(out, null, 1)}\n`);
