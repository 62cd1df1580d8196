#!/usr/bin/env node
// The JIT's warm-up, which the small sizes of `--quick` measure: one process publishes N
// messages, then consumes and acks them, with ddmq and with the floor; it prints the CPU
// time a message (user + system, the compiler's threads included) for each 500 in turn.
// Used to explain workload 5.
//   node bench/warmup.mjs [N] [DIR]          (default 6000, /dev/shm)
//   node --no-opt bench/warmup.mjs           (without the optimizing compiler)
import * as fs from 'node:fs';
import { join } from 'node:path';
import { Broker } from '../dist/index.js';
import { floorConsume, floorPublish, floorQueue } from './floor.mjs';

const count = Number(process.argv[2] ?? 6000);
const base = fs.mkdtempSync(join(process.argv[3] ?? '/dev/shm', 'ddmq-warmup-'));
const BATCH = 500;
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
/** Runs step(i) for i < count; the CPU microseconds a message of each batch. */
async function perBatch(step) {
  const row = [];
  let last = cpuMs();
  for (let i = 0; i < count; i++) {
    await step(i);
    if ((i + 1) % BATCH === 0) {
      const t = cpuMs();
      row.push(Math.round(((t - last) * 1000) / BATCH));
      last = t;
    }
  }
  return row.join(' ');
}
try {
  const b = await Broker.open(join(base, 'ddmq'), { create: true });
  await b.createQueue('q');
  console.log(`ddmq publish, us a message for each ${BATCH}: ${await perBatch((i) => b.publish('q', { t: i }))}`);
  console.log(`ddmq consume+ack:                    ${await perBatch(async () => b.ack((await b.consume('q', { skipCleaning: true }))[0]))}`);
  b.close();
  const dir = floorQueue(join(base, 'floor'));
  const payload = () => JSON.stringify({ message: { t: performance.now() } });
  console.log(`floor publish:                       ${await perBatch((i) => floorPublish(dir, 1, { start: i, payload }))}`);
  // One listing; each call is handed one name of it (with a limit, floorConsume would read
  // one name past the limit and drop it).
  const names = fs.readdirSync(dir);
  console.log(`floor consume:                       ${await perBatch((i) => floorConsume(dir, 1, undefined, { names: [names[i]], next: 0 }))}`);
} finally {
  fs.rmSync(base, { recursive: true, force: true });
}
