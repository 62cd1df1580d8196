// One consumer process of sim/real-run.mjs: consume (n=1, waiting) -> task (sleep) -> ack,
// until the stop file exists. Writes its counters as one JSON object to OUT_FILE.
//   node sim/real-consumer.mjs ROOT QUEUE TASK_MS STOP_FILE OUT_FILE
import { existsSync, writeFileSync } from 'node:fs';
import { Broker } from '../dist/index.js';
import { brokerInternals } from '../dist/store/internals.js';

const [root, queue, taskMsArg, stopFile, outFile] = process.argv.slice(2);
const taskMs = Number(taskMsArg);
let listings = 0;
const broker = await Broker.open(root, {
  log: (_level, text) => {
    if (text.startsWith('listed ')) listings++;
  },
});
const q = await brokerInternals(broker).queue(queue);
const ids = [];
// Ready, then wait for the parent's go (so that process start-up is not timed).
writeFileSync(`${outFile}.ready`, '');
while (!existsSync(`${stopFile}.go`)) await new Promise((r) => setTimeout(r, 2));
const cpu0 = process.cpuUsage();
while (!existsSync(stopFile)) {
  const got = await broker.consume(queue, { n: 1, wait: 0.5, skipCleaning: true });
  for (const m of got) {
    if (taskMs > 0) await new Promise((r) => setTimeout(r, taskMs));
    await broker.ack(m);
    ids.push(m.message);
  }
}
const cpu = process.cpuUsage(cpu0);
writeFileSync(outFile, JSON.stringify({ ids, lost: q.lostClaims, listings, cpuMs: (cpu.user + cpu.system) / 1000 }));
