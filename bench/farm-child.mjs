// One process of the farm harness (bench/farm.mjs). It opens what it needs, prints
// "ready", waits for a line on stdin ("go"), works, and writes one JSON file.
//   node farm-child.mjs consume ROOT QUEUE OUT_FILE STOP_FILE TASK_MS
//      a loop of consume (n=1, with wait) -> sleep TASK_MS -> ack, until the parent writes the
//      local STOP_FILE, having seen the queue drained in the server's own view (this client's
//      may be stale). It also says "stop" on stdin, which ends a wait at once: the file is
//      looked at only between waits, so that it adds few calls to what --count-ops counts.
//      OUT_FILE gets { acked: [task numbers], won, lost, listings, cpuMs (its CPU from go to stop),
//      lostAt: [[tasks acked so far, claims lost in that consume, listings so far]] (where the losses were) }
//   node farm-child.mjs produce ROOT QUEUE OUT_FILE COUNT
//      publishes COUNT messages "0" ... "COUNT-1"; OUT_FILE gets { published }
import { existsSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Broker } from '../dist/index.js';
import { brokerInternals } from '../dist/store/internals.js';

const [mode, root, queue, outFile, arg1, arg2] = process.argv.slice(2);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const broker = await Broker.open(root, { onWarning: (w) => process.stderr.write(`warning: ${w.message}\n`) });
const q = await brokerInternals(broker).queue(queue);

process.stdout.write('ready\n');
const lines = createInterface({ input: process.stdin });
const stopping = new AbortController();
await new Promise((resolve) => lines.once('line', resolve));
lines.on('line', (l) => l === 'stop' && stopping.abort());

if (mode === 'consume') {
  const stopFile = arg1;
  const taskMs = Number(arg2);
  const acked = [];
  const cpu0 = process.cpuUsage();
  const lostAt = [];
  let lastLost = 0;
  while (!stopping.signal.aborted) {
    const [msg] = await broker.consume(queue, { n: 1, wait: 5, signal: stopping.signal });
    if (q.lostClaims !== lastLost) { lostAt.push([acked.length, q.lostClaims - lastLost, q.listings]); lastLost = q.lostClaims; }
    if (msg === undefined) {
      if (existsSync(stopFile)) break;
      continue;
    }
    if (taskMs > 0) await sleep(taskMs);
    await broker.ack(msg);
    acked.push(msg.message);
  }
  const cpu = process.cpuUsage(cpu0);
  writeFileSync(outFile, JSON.stringify({ acked, won: acked.length, lost: q.lostClaims, listings: q.listings, lostAt, cpuMs: (cpu.user + cpu.system) / 1000 }));
} else if (mode === 'produce') {
  const count = Number(arg1);
  const published = await broker.publishMany(queue, Array.from({ length: count }, (_, i) => String(i)));
  writeFileSync(outFile, JSON.stringify({ published }));
} else {
  throw new Error(`farm-child: unknown mode ${mode}`);
}
lines.close();
broker.close();
