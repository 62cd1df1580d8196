// Medians of repeated real runs: node sim/median.mjs FILE... > OUT.json
// Groups the runs of the JSON files (arrays of sim/real-run.mjs or bench/farm.mjs runs) by
// fs, consumers, mounts, tasks and taskMs, and keeps the median run by throughput, whole (its
// figures belong together: the other load it ran under with the throughput it had); with an
// even number of runs, the slower of the middle two.
import { readFileSync } from 'node:fs';

// --max-other-load X: only runs during which other programs took at most X of the machine;
// --all: every such run, no medians.
const args = process.argv.slice(2);
let maxOther = Infinity;
let all = false;
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--max-other-load') maxOther = Number(args[++i]);
  else if (args[i] === '--all') all = true;
  else files.push(args[i]);
}
if (files.length === 0 || !(maxOther >= 0)) {
  process.stderr.write('usage: node sim/median.mjs [--max-other-load X] [--all] FILE... (JSON arrays of real runs)\n');
  process.exit(2);
}
const kept = [];
const groups = new Map();
for (const file of files) {
  for (const run of JSON.parse(readFileSync(file, 'utf8'))) {
    if (!((run.otherLoad ?? 0) <= maxOther)) continue;
    kept.push(run);
    const key = [run.fs, run.consumers, run.mounts, run.tasks, run.taskMs].join('/');
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(run);
  }
}
const out = all ? kept : [];
if (!all) for (const runs of groups.values()) {
  const sorted = [...runs].sort((a, b) => a.throughput - b.throughput);
  out.push({ ...sorted[(sorted.length - 1) >> 1], repeats: runs.length, throughputs: sorted.map((r) => r.throughput) });
}
out.sort((a, b) => a.fs.localeCompare(b.fs) || a.taskMs - b.taskMs || a.consumers - b.consumers);
process.stdout.write(`${JSON.stringify(out, null, 1)}\n`);
