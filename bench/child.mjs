// A process of the multi-process workloads, ddmq's or the floor's. It opens what it
// needs, prints "ready", waits for a line on stdin ("go"), works, and prints one JSON line.
//   node child.mjs drain   ROOT ddmq|floor            consume and ack until the queue is empty
//   node child.mjs produce ROOT ddmq|floor COUNT TAG   publish COUNT messages stamped with the time
//   node child.mjs follow  ROOT ddmq|floor DONE_FILE   consume until DONE_FILE exists and the queue is
//                                                      empty; report each message's latency
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Broker } from '../dist/index.js';
import { floorConsume, floorPublish } from './floor.mjs';

const [mode, root, impl, arg, tag] = process.argv.slice(2);
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const dir = join(root, 'q');
const broker = impl === 'ddmq' ? await Broker.open(root) : null;
const queue = broker ? await broker.queue('q') : null;

process.stdout.write('ready\n');
const lines = createInterface({ input: process.stdin });
await new Promise((resolve) => lines.once('line', resolve));
lines.close();
const started = now();
const cpuAtGo = process.cpuUsage();
const out = { started };

if (mode === 'drain') {
  let consumed = 0;
  if (broker) {
    for (;;) {
      const [m] = await broker.consume('q', { skipCleaning: true });
      if (!m) break;
      await broker.ack(m);
      consumed++;
    }
    out.lost = queue.lostClaims;
  } else {
    let lost = 0;
    for (;;) {
      const r = floorConsume(dir);
      consumed += r.consumed;
      lost += r.lost;
      if (r.consumed === 0) break;
    }
    out.lost = lost;
  }
  out.consumed = consumed;
} else if (mode === 'produce') {
  const count = Number(arg);
  if (broker) {
    for (let i = 0; i < count; i++) await broker.publish('q', { t: now() });
  } else {
    floorPublish(dir, count, { tag: Number(tag), payload: () => JSON.stringify({ message: { t: now() } }) });
  }
} else if (mode === 'follow') {
  const latencies = [];
  const seen = (message) => latencies.push(now() - message.t);
  // The producers are known to be done once DONE_FILE is seen; a try that finds nothing
  // after that ends it. The file is looked at only after an empty try, so that ddmq (one
  // message a try) and the floor (a listing a try) make the same number of these checks
  // (a stat each), not one a message for ddmq and one a listing for the floor.
  let done = false;
  for (;;) {
    let got = 0;
    if (broker) {
      const [m] = await broker.consume('q', { skipCleaning: true });
      if (m) {
        await broker.ack(m);
        seen(m.message);
        got = 1;
      }
    } else {
      got = floorConsume(dir, Infinity, (m) => seen(m.message)).consumed;
    }
    if (got === 0) {
      if (done) break;
      done = existsSync(arg);
      if (!done) await sleep(1);
    }
  }
  out.latencies = latencies.map((l) => Math.round(l * 1000) / 1000);
} else {
  throw new Error(`unknown mode ${mode}`);
}
out.ended = now();
// CPU time (user + system, all threads, the JIT's included) spent since "go", in ms.
const cpu = process.cpuUsage(cpuAtGo);
out.cpuMs = (cpu.user + cpu.system) / 1000;
out.maxRssMiB = process.resourceUsage().maxRSS / 1024;
process.stdout.write(`${JSON.stringify(out)}\n`);
