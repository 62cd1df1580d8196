#!/usr/bin/env node
// The cost of several processes draining one folder when they never meet: each process
// takes a fixed share of the names (index mod P), so no claim is ever lost and nothing is
// sorted. What is left is the file system and the CPU. Used to explain workload 4.
//   node bench/ideal-floor.mjs [MESSAGES] [DIR]        (default 80000, /dev/shm)
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { floorPublish, floorQueue } from './floor.mjs';

const count = Number(process.argv[2] ?? 80_000);
const base = fs.mkdtempSync(join(process.argv[3] ?? '/dev/shm', 'ddmq-ideal-'));
const worker = (dir, procs, k) => `import * as fs from 'node:fs';
const dir = ${JSON.stringify(dir)};
const names = fs.readdirSync(dir).filter((n, i) => n.includes('.ddmq') && i % ${procs} === ${k});
for (const n of names) { const w = dir + '/work/1.' + n; fs.renameSync(dir + '/' + n, w); JSON.parse(fs.readFileSync(w, 'utf8')); fs.unlinkSync(w); }`;
try {
  for (const procs of [1, 2, 4, 8]) {
    const dir = floorQueue(join(base, `p${procs}`));
    floorPublish(dir, count);
    const started = performance.now();
    await Promise.all(
      Array.from({ length: procs }, (_, k) => new Promise((resolve) => spawn(process.execPath, ['--input-type=module', '-e', worker(dir, procs, k)], { stdio: 'inherit' }).on('close', resolve))),
    );
    const ms = performance.now() - started;
    console.log(`${procs} process${procs > 1 ? 'es' : ''}: ${Math.round((count / ms) * 1000)} msg/s (with process start)`);
  }
} finally {
  fs.rmSync(base, { recursive: true, force: true });
}
