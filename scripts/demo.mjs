#!/usr/bin/env node
// A tour of ddmq on a local root (./ddmq-data, or the folder given): the command line,
// then a task farm: 300 tasks, three `ddmq work` processes, one of them killed mid-run,
// its tasks coming back, and the final tally. Under a minute.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Broker } from '../dist/index.js';

const root = resolve(process.argv[2] ?? 'ddmq-data');
const cli = fileURLToPath(new URL('../dist/cli/ddmq.cjs', import.meta.url));
const say = (text) => console.log(`\n\x1b[1m${text}\x1b[0m`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function ddmq(args, input) {
  console.log(`$ ddmq ${args.map((a) => (/[\s"{}]/.test(a) ? `'${a}'` : a)).join(' ')}`);
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', input });
  process.stdout.write(r.stdout + r.stderr);
  return r;
}

say(`1. A queue is a folder, a message is a file (root: ${root})`);
ddmq(['create', '-f', root, 'demo']);
ddmq(['purge', root, 'demo', '-s']);
ddmq(['publish', root, 'demo', 'routine task']);
ddmq(['publish', root, 'demo', 'urgent task', '-p', '1']);
const consumed = ddmq(['consume', root, 'demo']);
ddmq(['ack', root, 'demo', JSON.parse(consumed.stdout).filename]);
ddmq(['view', root]);
ddmq(['purge', root, 'demo', '-s']);

say('2. A task farm: 300 tasks, three worker processes (two tasks at a time each)');
// Short leases, so that the tasks of a killed worker come back within seconds.
ddmq(['settings', root, 'demo', '--set', 'message_timeout=3', '--set', 'expiry_grace=0', '-s']);
const tasks = Array.from({ length: 300 }, (_, i) => `task-${i}`).join('\n');
ddmq(['publish', root, 'demo', '--file', '-'], tasks);
const broker = await Broker.open(root);
// Each task notes its message in a log once it has run: a worker killed between a task's
// end and its report of it (its ack or its 'done' line) cannot hide that the task ran.
const ranLog = join(tmpdir(), `ddmq-demo-${process.pid}.log`);
writeFileSync(ranLog, '');
const task = ['sh', '-c', 'sleep 0.1 && printf "%s\\n" "$DDMQ_MESSAGE" >> "$1"', 'task', ranLog];
const workers = [1, 2, 3].map((n) => {
  const child = spawn(process.execPath, [cli, 'work', root, 'demo', '-j', '2', '--idle-exit', '4', '--format', 'json', '--', ...task], { stdio: ['ignore', 'pipe', 'pipe'] });
  const worker = { n, child, done: 0, tasks: [], killed: false, closed: false, exit: null };
  let buffer = '';
  child.stdout.setEncoding('utf8').on('data', (d) => {
    buffer += d;
    for (let i = buffer.indexOf('\n'); i >= 0; i = buffer.indexOf('\n')) {
      const event = JSON.parse(buffer.slice(0, i));
      buffer = buffer.slice(i + 1);
      if (event.event === 'done') {
        worker.done++;
        worker.tasks.push(event.message);
      }
    }
  });
  child.on('close', (code) => {
    worker.closed = true;
    worker.exit = code;
  });
  return worker;
});
console.log(`$ ddmq work ROOT demo -j 2 --idle-exit 4 --format json -- sh -c 'sleep 0.1 && printf "%s\\n" "$DDMQ_MESSAGE" >> "$1"' task LOG    (x3)`);

const started = Date.now();
let requeued = 0;
let killedInFlight = 0;
while (workers.some((w) => !w.closed)) {
  await sleep(500);
  const [c] = await broker.counts('demo');
  const done = workers.reduce((a, w) => a + w.done, 0);
  // Housekeeping: a clean takes back what a dead worker held once its lease ran out
  // (every consume also does this, at most once a minute).
  requeued += (await broker.clean('demo'))[0].requeued;
  console.log(`  ${((Date.now() - started) / 1000).toFixed(1).padStart(4)} s  done ${String(done).padStart(3)}  ready ${String(c.ready).padStart(3)}  in flight ${c.inFlight}  requeued after the kill ${requeued}`);
  if (!workers[0].killed && done >= 60) {
    workers[0].killed = true;
    killedInFlight = c.inFlight;
    workers[0].child.kill('SIGKILL');
    console.log(`  >>> killed worker 1 (SIGKILL) while it ran its tasks: they stay in flight until their 3 s lease runs out`);
  }
}

say('3. The tally');
const reported = workers.reduce((a, w) => a + w.done, 0);
for (const w of workers) console.log(`worker ${w.n}: ${w.done} tasks done${w.killed ? ' (then killed)' : `, exit ${w.exit}`}`);
// What the tasks themselves logged: a task the killed worker ran to its end but did not
// report is there, and one run again after the kill is there twice (at least once).
const ran = readFileSync(ranLog, 'utf8').split('\n').filter((l) => l !== '');
rmSync(ranLog, { force: true });
console.log(`${ran.length} tasks run, ${new Set(ran).size} distinct of 300 (${reported} reported done); ${requeued} came back after the kill (in flight then: ${killedInFlight}); ${((Date.now() - started) / 1000).toFixed(1)} s`);
ddmq(['view', root]);
console.log(`\nThe tree is yours to look at: ls -R ${root}`);
