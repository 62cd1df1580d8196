/**
 * A worker in TypeScript: takes tasks ({ "file": PATH }) from the queue `tasks`, counts
 * each file's words, 4 at a time, and publishes each result to the queue `results`.
 *
 *   npx tsx examples/worker.ts ROOT          (or compile it with tsc and run the .js)
 *
 * A task that throws is nacked and retried by the queue's settings; SIGTERM (a batch
 * system's time limit) lets running tasks finish for 30 s, then gives the rest back.
 * The worker ends once, for IDLE_EXIT seconds (default 60), nothing was left to do.
 */
import { readFile } from 'node:fs/promises';
import { Broker, work } from 'ddmq';

interface Task {
  file: string;
}

interface Result {
  file: string;
  words: number;
  by: number;
}

/** A message is JSON from anyone: check its shape before trusting it. */
function asTask(body: unknown): Task {
  if (typeof body !== 'object' || body === null || typeof (body as Task).file !== 'string') {
    throw new Error(`not a task: ${JSON.stringify(body)}`);
  }
  return body as Task;
}

const root = process.argv[2];
if (root === undefined) {
  console.error('usage: worker.ts ROOT');
  process.exit(2);
}

// create: the root and queues are made if missing (results, on its first publish).
const broker = await Broker.open(root, { create: true });

const worker = work(
  broker,
  'tasks',
  async (msg, { signal }) => {
    const task = asTask(msg.message);
    const text = await readFile(task.file, { encoding: 'utf8', signal });
    const result: Result = { file: task.file, words: text.split(/\s+/).filter(Boolean).length, by: process.pid };
    await broker.publish('results', result);
  },
  { concurrency: 4, idleExit: Number(process.env.IDLE_EXIT ?? 60) },
);

process.once('SIGTERM', () => void worker.stop(30));
process.once('SIGINT', () => void worker.stop(30));

const stats = await worker.done; // { done, failed, released, leaseLost, running }
console.log(JSON.stringify(stats));
broker.close();
process.exitCode = stats.failed > 0 ? 1 : 0;
