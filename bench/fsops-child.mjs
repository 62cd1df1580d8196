// One phase of bench/fsops.mjs, run under strace by it. The phase's setup (opening the
// broker, publishing the messages a consume needs) happens first; then the child stats two
// marker paths that do not exist, ROOT/.fsops-begin and ROOT/.fsops-end, around the work, and
// the parent counts only the calls between the two markers. It prints one JSON line:
// { count, seconds }.
//   node fsops-child.mjs PHASE ROOT N IDLE_SECONDS CLI_N [fsync]
// PHASE: publish | publish-cli | consume-ack | consume | consume-nack | clean | idle-consume |
//        idle-work, or any of those with "floor-" in front (the same job by hand with node:fs)
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Broker, work } from '../dist/index.js';

const [phase, root, nArg, idleArg, cliArg, fsyncArg] = process.argv.slice(2);
const n = Number(nArg);
const idleSeconds = Number(idleArg);
const cliN = Number(cliArg);
const fsync = fsyncArg === 'fsync';
const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'cli', 'ddmq.cjs');
const POLL_MS = 1000; // the broker's default pollIntervalMs: the floor lists once per interval
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const mark = (what) => fs.statSync(join(root, `.fsops-${what}`), { throwIfNoEntry: false });
const dir = join(root, 'q');
const work_ = join(dir, 'work');

// ---------------------------------------------------------------- the floor, by hand
let tmpSerial = 0;
const readyName = (i) => `999.${String(17960000000000000000n + BigInt(i)).padStart(20, '0')}.ddmq${i.toString(16).padStart(32, '0')}`;
const payload = (i) =>
  JSON.stringify({ message: `task-${i}`, queue: 'q', priority: 999, queue_number: '17960000000000000000', id: i.toString(16).padStart(32, '0'), filename: readyName(i), timeout: null, requeue: true, requeue_counter: 0, requeue_limit: null });
/** open a temp file, write, close, rename into its final name (with fsync: the file and then the folder synced). */
function floorWrite(folder, name, text) {
  const tmp = join(folder, `.tmp-floor-${tmpSerial++}`);
  const fd = fs.openSync(tmp, 'wx');
  fs.writeSync(fd, text);
  if (fsync) fs.fsyncSync(fd);
  fs.closeSync(fd);
  fs.renameSync(tmp, join(folder, name));
  if (fsync) {
    const dfd = fs.openSync(folder, 'r');
    fs.fsyncSync(dfd);
    fs.closeSync(dfd);
  }
}
const buf = Buffer.alloc(64 * 1024);
/** open, read to the end, close: no stat. */
function floorRead(path) {
  const fd = fs.openSync(path, 'r');
  let len = 0;
  for (let got; (got = fs.readSync(fd, buf, len, buf.length - len, null)) > 0; ) len += got;
  fs.closeSync(fd);
  return JSON.parse(buf.toString('utf8', 0, len));
}
let claimSerial = 0;
/** Takes one listed file: a rename into a name of its own in work/, then read. */
function floorClaim(from) {
  const inFlight = join(work_, `${Math.floor(Date.now() / 1000) + 600}.${from.split('/').pop()}x${claimSerial++}`);
  fs.renameSync(from, inFlight);
  return { inFlight, message: floorRead(inFlight) };
}

// ---------------------------------------------------------------- setup
const floor = phase.startsWith('floor-');
const job = floor ? phase.slice('floor-'.length) : phase;
fs.mkdirSync(work_, { recursive: true });
let broker;
if (floor) {
  if (['consume-ack', 'consume', 'consume-nack'].includes(job)) for (let i = 0; i < n; i++) fs.writeFileSync(join(dir, readyName(i)), payload(i));
  if (job === 'clean') for (let i = 0; i < n; i++) fs.writeFileSync(join(work_, `1000000000.${readyName(i)}`), payload(i));
} else {
  broker = await Broker.open(root, { create: true, fsync });
  await broker.createQueue('q');
  if (['consume-ack', 'consume', 'consume-nack', 'clean'].includes(job)) {
    await broker.publishMany('q', Array.from({ length: n }, (_, i) => `task-${i}`));
  }
  if (job === 'clean') {
    // n messages in flight whose leases ran out an hour ago (past any expiry_grace): taken,
    // then renamed to an expiry in the past, as the tree's format says (EXPIRY.PRIO.QNUM.ddmqID).
    for (let i = 0; i < n; i++) if ((await broker.consume('q', { skipCleaning: true })).length !== 1) throw new Error('setup: a message was not consumed');
    const past = Math.floor(Date.now() / 1000) - 3600;
    for (const name of fs.readdirSync(work_)) fs.renameSync(join(work_, name), join(work_, name.replace(/^\d+\./, `${past}.`)));
    broker = await Broker.open(root, { fsync }); // a cleaner that never saw these messages
  }
  if (job === 'publish') await broker.settings('q'); // the first call's settings read is setup, as the broker's open is
}

// ---------------------------------------------------------------- the phase
let count = n;
mark('begin');
const started = performance.now();
if (floor) {
  if (job === 'publish') for (let i = 0; i < n; i++) floorWrite(dir, readyName(i), payload(i));
  else if (job === 'consume-ack' || job === 'consume' || job === 'consume-nack') {
    for (const name of fs.readdirSync(dir)) {
      if (!name.includes('.ddmq')) continue;
      const { inFlight, message } = floorClaim(join(dir, name));
      if (job === 'consume-ack') fs.unlinkSync(inFlight);
      if (job === 'consume-nack') {
        floorWrite(dir, readyName(n + claimSerial), JSON.stringify({ ...message, requeue_counter: message.requeue_counter + 1 }));
        fs.unlinkSync(inFlight);
      }
    }
  } else if (job === 'clean') {
    for (const name of fs.readdirSync(work_)) {
      if (!name.includes('.ddmq') || Number(name.split('.')[0]) > Date.now() / 1000) continue;
      const { inFlight, message } = floorClaim(join(work_, name));
      floorWrite(dir, readyName(n + claimSerial), JSON.stringify({ ...message, requeue_counter: message.requeue_counter + 1 }));
      fs.unlinkSync(inFlight);
    }
  } else if (job === 'idle-consume' || job === 'idle-work') {
    // Counted after its first poll, as ddmq's waiting consumer is.
    const poll = () => {
      if (fs.readdirSync(dir).some((name) => name.includes('.ddmq'))) throw new Error('the idle queue is not empty');
    };
    poll();
    await sleep(POLL_MS);
    mark('begin-idle');
    const idleStarted = performance.now();
    for (let k = 0; k < idleSeconds * (1000 / POLL_MS); k++) {
      poll();
      await sleep(POLL_MS);
    }
    mark('end');
    process.stdout.write(`${JSON.stringify({ count: 0, seconds: (performance.now() - idleStarted) / 1000 })}\n`);
    process.exit(0);
  } else if (job === 'publish-cli') {
    for (let i = 0; i < cliN; i++) floorWrite(dir, readyName(i), payload(i));
    count = cliN;
  } else throw new Error(`unknown phase ${phase}`);
} else if (job === 'publish') {
  for (let i = 0; i < n; i++) await broker.publish('q', `task-${i}`);
} else if (job === 'publish-cli') {
  for (let i = 0; i < cliN; i++) {
    const r = spawnSync(process.execPath, [CLI, 'publish', root, 'q', `task-${i}`], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ddmq publish failed: ${r.stderr}`);
  }
  count = cliN;
} else if (job === 'consume-ack' || job === 'consume' || job === 'consume-nack') {
  for (let i = 0; i < n; i++) {
    const [m] = await broker.consume('q', { n: 1 });
    if (!m) throw new Error(`consume ${i + 1} of ${n} found nothing`);
    if (job === 'consume-ack') await broker.ack(m);
    if (job === 'consume-nack') await broker.nack(m, { requeue: true });
  }
} else if (job === 'clean') {
  const r = await broker.clean('q');
  const requeued = JSON.stringify(r);
  if (!requeued.includes(String(n))) throw new Error(`clean did not requeue ${n} messages: ${requeued}`);
} else if (job === 'idle-consume' || job === 'idle-work') {
  // Started before the first marker; counted once its first polls are behind it (the
  // backoff from 50 ms reaches the 1 s interval after ~1.5 s).
  const warm = 2500;
  let worker;
  let waiting;
  if (job === 'idle-consume') {
    waiting = broker.consume('q', { wait: idleSeconds + warm / 1000 + 5 });
  } else {
    worker = work(broker, 'q', async () => {
      throw new Error('the idle queue is not empty');
    });
  }
  await sleep(warm);
  mark('begin-idle');
  const idleStarted = performance.now();
  await sleep(idleSeconds * 1000);
  mark('end');
  const seconds = (performance.now() - idleStarted) / 1000;
  process.stdout.write(`${JSON.stringify({ count: 0, seconds })}\n`);
  if (worker) {
    worker.stop(0);
    await worker.done;
  }
  if (waiting && (await Promise.race([waiting, sleep(0).then(() => 'pending')])) !== 'pending') throw new Error('the waiting consume returned early');
  process.exit(0);
} else throw new Error(`unknown phase ${phase}`);
const seconds = (performance.now() - started) / 1000;
mark('end');
process.stdout.write(`${JSON.stringify({ count, seconds })}\n`);
process.exit(0);
