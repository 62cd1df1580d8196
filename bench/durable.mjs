// One run of a durable-publishing workload (W9-W11), in a process of its own so that
// libuv's thread pool has the size ddmq's command gives it (UV_THREADPOOL_SIZE, set by the
// bench for this process as the README tells library users to). Prints the milliseconds.
//   node durable.mjs MODE ROOT COUNT
//   MODE: floor (no fsync) | floor-durable (write, fsync, rename, fsync the folder, one at a
//         time) | many (publishMany with fsync) | concurrent (64 publish calls in flight) |
//         one (one awaited publish at a time)
import { join } from 'node:path';
import { Broker } from '../dist/index.js';
import { floorPublish, floorQueue } from './floor.mjs';

const [mode, root, countArg] = process.argv.slice(2);
const count = Number(countArg);
let run;
/** Each publish call's time from call to return, in ms (one and concurrent). */
const latencies = [];
if (mode === 'floor' || mode === 'floor-durable') {
  const dir = floorQueue(root);
  run = async () => floorPublish(dir, count, { fsync: mode === 'floor-durable' });
} else {
  const broker = await Broker.open(join(root), { create: true, fsync: true });
  await broker.createQueue('q');
  const bodies = Array.from({ length: count }, (_, i) => `task-${i}`);
  if (mode === 'many') run = () => broker.publishMany('q', bodies);
  else if (mode === 'one') run = async () => {
    for (const b of bodies) {
      const t = performance.now();
      await broker.publish('q', b);
      latencies.push(performance.now() - t);
    }
  };
  else if (mode === 'concurrent') run = async () => {
    let next = 0;
    const producer = async () => {
      while (next < count) {
        const t = performance.now();
        await broker.publish('q', bodies[next++]);
        latencies.push(performance.now() - t);
      }
    };
    await Promise.all(Array.from({ length: 64 }, producer));
  };
  else throw new Error(`unknown mode ${mode}`);
}
const t = performance.now();
await run();
const ms = performance.now() - t;
latencies.sort((a, b) => a - b);
const at = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? null;
process.stdout.write(`${JSON.stringify({ ms, p50_ms: at(0.5), p99_ms: at(0.99) })}\n`);
