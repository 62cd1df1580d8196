#!/usr/bin/env node
// A short tour of ddmq on a local root (./ddmq-data, or the folder given): the command
// line, a few worker processes draining a queue together, and a lease that runs out.
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';
import { Broker } from '../dist/index.js';

const root = resolve(process.argv[2] ?? 'ddmq-data');
const cli = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const say = (text) => console.log(`\n\x1b[1m${text}\x1b[0m`);

function ddmq(...args) {
  console.log(`$ ddmq ${args.map((a) => (/[\s"{}]/.test(a) ? `'${a}'` : a)).join(' ')}`);
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
  process.stdout.write(r.stdout + r.stderr);
  return r;
}

say(`1. A queue is a folder, a message is a file (root: ${root})`);
ddmq('create', '-f', root, 'demo');
ddmq('purge', root, 'demo', '-s');
ddmq('publish', root, 'demo', 'routine task');
ddmq('publish', root, 'demo', 'urgent task', '-p', '1');
ddmq('view', root);

say('2. Consume takes the most urgent message into work/; ack deletes it');
const consumed = ddmq('consume', root, 'demo');
const { filename } = JSON.parse(consumed.stdout);
ddmq('ack', root, 'demo', filename);
ddmq('consume', root, 'demo', '--format', 'plain');

say('3. Three worker processes drain 300 tasks together; each task is done exactly once');
const broker = await Broker.open(root, { create: true });
await broker.purge('demo');
for (let i = 0; i < 300; i++) await broker.publish('demo', { task: i });
const workerCode = `
  import { Broker } from ${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)};
  const b = await Broker.open(${JSON.stringify(root)});
  const done = [];
  for (;;) {
    const [msg] = await b.consume('demo', { skipCleaning: true });
    if (!msg) break;
    await new Promise((r) => setTimeout(r, 2)); // "work"
    await b.ack(msg);
    done.push(msg.message.task);
  }
  console.log(JSON.stringify(done));`;
const started = Date.now();
const results = await Promise.all(
  [1, 2, 3].map(
    () =>
      new Promise((ok, fail) => {
        const p = spawn(process.execPath, ['--input-type=module', '-e', workerCode], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        p.stdout.on('data', (d) => (out += d));
        p.on('close', (code) => (code === 0 ? ok(JSON.parse(out)) : fail(new Error(`worker exited ${code}`))));
      }),
  ),
);
results.forEach((tasks, i) => console.log(`worker ${i + 1}: ${tasks.length} tasks`));
const all = results.flat();
console.log(`${all.length} tasks done in ${Date.now() - started} ms; distinct: ${new Set(all).size}; missing: ${300 - new Set(all).size}`);

say('4. A consumer that dies keeps no message: its lease runs out and clean requeues it');
await broker.publish('demo', 'fragile task', { timeout: 1 });
const [taken] = await broker.consume('demo');
console.log(`consumed ${taken.filename} with a 1 s lease, then "crashed" without an ack`);
await new Promise((r) => setTimeout(r, 2100));
ddmq('clean', root, 'demo');
ddmq('consume', root, 'demo', '--format', 'json');
ddmq('view', root);
console.log(`\nThe tree is yours to look at: ls -R ${root}`);
