#!/usr/bin/env node
// Cleaners of both tools at once over one queue of expired messages (issue 8).
//
//   npm run build && node scripts/interop-cleaners.mjs [--runs 10] [--messages 300]
//        [--ddmq 2] [--original 2] [--stagger 100] [--only mixed|ddmq|original] [--dir DIR] [--json]
//        [--consumers]
//
// Each run makes a queue, publishes MESSAGES messages with distinct payloads, consumes
// them all with a lease that ran out an hour ago, and then starts the cleaners at one
// shared instant, each delayed by a random 0 to --stagger ms (independent processes do not
// start in the same millisecond; a clean of 300 messages takes some 30-80 ms here, so
// with 0 the faster cleaners lead from the start and the others mostly find files gone):
// ddmq's (this script with --child-clean: Broker.clean of the built package) and
// the original's as re-enacted by test/fixtures/original_ops.py (PyPI cannot be reached
// here: these are figures of that model, not of the real tool). Three set-ups, each with
// the same number of cleaners: "mixed" (--ddmq of ours and --original of the original's),
// "ddmq" (all ours) and "original" (all the original's). Afterwards it counts the ready
// messages by payload: duplicates (a payload more than once), losses (a payload in neither
// the queue nor work/), files left in work/, and the Python exceptions by where they were
// raised. With --consumers, the same set-ups of consumers over MESSAGES ready messages
// (the original's reads before it takes): deliveries, duplicates, losses, exceptions.
// Needs python3 with PyYAML.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Broker } from '../dist/index.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const SELF = fileURLToPath(import.meta.url);
const ORIGINAL = join(REPO, 'test', 'fixtures', 'original_ops.py');
const READY_RE = /^\d+\.\d+\.ddmq[A-Za-z0-9]+$/;

function parseArgs(argv) {
  const o = { runs: 10, messages: 300, ddmq: 2, original: 2, stagger: 100, only: null, dir: tmpdir(), json: false, python: process.env.DDMQ_TEST_PYTHON ?? 'python3' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') o.json = true;
    else if (a === '--consumers') o.consumers = true;
    else if (a === '-h' || a === '--help') {
      process.stdout.write(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').filter((l) => l.startsWith('//')).map((l) => l.slice(3)).join('\n') + '\n');
      process.exit(0);
    } else if (['--runs', '--messages', '--ddmq', '--original', '--stagger'].includes(a)) o[a.slice(2)] = Number(argv[++i]);
    else if (a === '--only' || a === '--dir' || a === '--python') o[a.slice(2)] = argv[++i];
    else throw new Error(`unknown argument ${a} (--help)`);
  }
  return o;
}

function run(cmd, args) {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    p.stderr.setEncoding('utf8').on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, out, err }));
  });
}

/** Where a Python traceback was raised: "FileNotFoundError in clean (os.remove)". */
function exceptionOf(stderr) {
  const lines = stderr.trimEnd().split('\n');
  const last = lines.at(-1) ?? '';
  const type = last.split(':')[0];
  let where = '?';
  for (let i = lines.length - 1; i >= 0; i--) {
    const m = /File ".*original_ops\.py", line \d+, in (\w+)/.exec(lines[i]);
    if (m) {
      const call = /os\.(\w+)/.exec(lines[i + 1] ?? '');
      where = `${m[1]}${call ? ` (os.${call[1]})` : ''}`;
      break;
    }
  }
  return `${type} in ${where}`;
}

/** One run: returns the counts. */
export async function oneRun({ dir, messages, cleaners, python, stagger = 0 }) {
  const base = fs.mkdtempSync(join(dir, 'ddmq-interop-'));
  try {
    const root = join(base, 'root');
    const past = await Broker.open(root, { create: true, now: () => Date.now() - 3_600_000 });
    await past.createQueue('q');
    const payloads = Array.from({ length: messages }, (_, i) => `m${String(i).padStart(5, '0')}`);
    const idOf = new Map();
    for (const p of payloads) idOf.set(p, (await past.publish('q', p)).id);
    const taken = await past.consume('q', { n: messages, timeout: 1, skipCleaning: true });
    if (taken.length !== messages) throw new Error(`consumed ${taken.length} of ${messages}`);

    const startAt = Date.now() + 1500;
    const procs = cleaners.map((kind) => {
      const at = String(startAt + Math.random() * stagger);
      return kind === 'ddmq'
        ? run(process.execPath, [SELF, '--child-clean', root, 'q', at]).then((r) => ({ kind, ...r }))
        : run(python, [ORIGINAL, 'clean', root, 'q', '--start-at', at]).then((r) => ({ kind, ...r }));
    });
    const results = await Promise.all(procs);

    const copies = new Map(); // payload -> [ids]
    const qdir = join(root, 'q');
    for (const name of fs.readdirSync(qdir)) {
      if (!READY_RE.test(name)) continue;
      const msg = JSON.parse(fs.readFileSync(join(qdir, name), 'utf8'));
      if (!copies.has(msg.message)) copies.set(msg.message, []);
      copies.get(msg.message).push(msg.id);
    }
    const inWork = new Set();
    const work = fs.readdirSync(join(qdir, 'work')).filter((n) => n.includes('.ddmq'));
    for (const name of work) inWork.add(JSON.parse(fs.readFileSync(join(qdir, 'work', name), 'utf8')).message);
    const ready = [...copies.values()].reduce((a, ids) => a + ids.length, 0);
    const lost = payloads.filter((p) => !copies.has(p) && !inWork.has(p)).length;
    const duplicated = [...copies.values()].filter((ids) => ids.length > 1).length;
    // ddmq keeps a message's id when it requeues it; the original publishes a new one.
    const byDdmq = payloads.reduce((a, p) => a + (copies.get(p) ?? []).filter((id) => id === idOf.get(p)).length, 0);
    const ddmqTwice = payloads.filter((p) => (copies.get(p) ?? []).filter((id) => id === idOf.get(p)).length > 1).length;
    const exceptions = {};
    const ddmqErrors = [];
    for (const r of results) {
      if (r.kind === 'original' && r.code !== 0) {
        const e = exceptionOf(r.err);
        exceptions[e] = (exceptions[e] ?? 0) + 1;
      }
      if (r.kind === 'ddmq' && (r.code !== 0 || r.err !== '')) ddmqErrors.push(r.err.trim() || `exit ${r.code}`);
    }
    const warnings = results.filter((r) => r.kind === 'original').reduce((a, r) => a + (r.err.match(/^Warning: /gm) ?? []).length, 0);
    const perCleaner = results.map((r) => `${r.kind}:${r.kind === 'ddmq' ? (r.out.trim() ? JSON.parse(r.out).requeued : 'x') : r.code === 0 ? r.out.trim() : 'raised'}`);
    return { perCleaner, ready, distinct: copies.size, duplicates: ready - copies.size, duplicated, lost, leftInWork: work.length, byDdmq, byOriginal: ready - byDdmq, ddmqTwice, exceptions, ddmqErrors, warnings };
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
}

async function mainConsumers(o, setups) {
  const report = { workload: 'consumers', messages: o.messages, runs: o.runs, stagger: o.stagger, dir: o.dir, node: process.version, setups: {} };
  for (const [name, consumers] of Object.entries(setups)) {
    if (o.only && o.only !== name) continue;
    const runs = [];
    for (let i = 0; i < o.runs; i++) runs.push(await oneConsumersRun({ dir: o.dir, messages: o.messages, consumers, python: o.python, stagger: o.stagger }));
    const exceptions = {};
    for (const r of runs) for (const [k, v] of Object.entries(r.exceptions)) exceptions[k] = (exceptions[k] ?? 0) + v;
    report.setups[name] = {
      consumers: `${consumers.filter((c) => c === 'ddmq').length} ddmq + ${consumers.filter((c) => c === 'original').length} original`,
      deliveries: range(runs.map((r) => r.deliveries)),
      duplicates: range(runs.map((r) => r.duplicates)),
      lost: runs.reduce((a, r) => a + r.lost, 0),
      left: range(runs.map((r) => r.left)),
      byDdmq: range(runs.map((r) => r.byKind.ddmq)),
      byOriginal: range(runs.map((r) => r.byKind.original)),
      runsWithPythonExceptions: runs.filter((r) => Object.keys(r.exceptions).length > 0).length,
      pythonExceptions: exceptions,
      ddmqEmptyButReady: runs.reduce((a, r) => a + r.emptyButReady, 0),
      perRun: runs.map((r) => `${r.byKind.ddmq}/${r.byKind.original}`),
      ddmqErrors: runs.flatMap((r) => r.ddmqErrors),
    };
  }
  if (o.json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return;
  }
  console.log(`${o.messages} ready messages, ${o.runs} runs per set-up, starts spread over ${o.stagger} ms, in ${o.dir} (Node ${process.version}); the original is the re-enactment`);
  console.log('| consumers | deliveries | duplicates | lost | left | taken by ddmq / by the original | runs with Python exceptions | exceptions (all runs) |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const s of Object.values(report.setups)) {
    const ex = Object.entries(s.pythonExceptions).map(([k, v]) => `${v} × ${k}`).join('; ') || 'none';
    console.log(`| ${s.consumers} | ${s.deliveries} | ${s.duplicates} | ${s.lost} | ${s.left} | ${s.byDdmq} / ${s.byOriginal} | ${s.runsWithPythonExceptions} of ${o.runs} | ${ex} |`);
    if (s.ddmqEmptyButReady) console.log(`  ddmq consumes that returned nothing while messages were ready: ${s.ddmqEmptyButReady}`);
    if (s.ddmqErrors.length) console.log(`  ddmq consumer errors: ${s.ddmqErrors.join(' | ')}`);
  }
}

function range(xs) {
  const lo = Math.min(...xs);
  const hi = Math.max(...xs);
  return lo === hi ? `${lo}` : `${lo}–${hi}`;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const total = o.ddmq + o.original;
  const setups = {
    mixed: [...Array(o.ddmq).fill('ddmq'), ...Array(o.original).fill('original')],
    ddmq: Array(total).fill('ddmq'),
    original: Array(total).fill('original'),
  };
  if (o.consumers) return mainConsumers(o, setups);
  const report = { messages: o.messages, runs: o.runs, stagger: o.stagger, dir: o.dir, node: process.version, setups: {} };
  for (const [name, cleaners] of Object.entries(setups)) {
    if (o.only && o.only !== name) continue;
    const runs = [];
    for (let i = 0; i < o.runs; i++) runs.push(await oneRun({ dir: o.dir, messages: o.messages, cleaners, python: o.python, stagger: o.stagger }));
    const exceptions = {};
    for (const r of runs) for (const [k, v] of Object.entries(r.exceptions)) exceptions[k] = (exceptions[k] ?? 0) + v;
    report.setups[name] = {
      cleaners: `${cleaners.filter((c) => c === 'ddmq').length} ddmq + ${cleaners.filter((c) => c === 'original').length} original`,
      ready: range(runs.map((r) => r.ready)),
      duplicates: range(runs.map((r) => r.duplicates)),
      lost: runs.reduce((a, r) => a + r.lost, 0),
      leftInWork: range(runs.map((r) => r.leftInWork)),
      requeuedByDdmq: range(runs.map((r) => r.byDdmq)),
      requeuedByOriginal: range(runs.map((r) => r.byOriginal)),
      ddmqRequeuedTwice: runs.reduce((a, r) => a + r.ddmqTwice, 0),
      runsWithPythonExceptions: runs.filter((r) => Object.keys(r.exceptions).length > 0).length,
      pythonExceptions: exceptions,
      pythonWarnings: runs.reduce((a, r) => a + r.warnings, 0),
      ddmqErrors: runs.flatMap((r) => r.ddmqErrors),
      perRun: runs.map((r) => r.ready),
      perCleaner: runs.map((r) => r.perCleaner.join(' ')),
    };
  }
  if (o.json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return;
  }
  console.log(`${o.messages} expired messages, ${o.runs} runs per set-up, starts spread over ${o.stagger} ms, in ${o.dir} (Node ${process.version}); the original is the re-enactment`);
  console.log('| cleaners | ready afterwards | duplicates | lost | left in work/ | requeued by ddmq / by the original | runs with Python exceptions | exceptions (all runs) |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const s of Object.values(report.setups)) {
    const ex = Object.entries(s.pythonExceptions).map(([k, v]) => `${v} × ${k}`).join('; ') || 'none';
    console.log(`| ${s.cleaners} | ${s.ready} | ${s.duplicates} | ${s.lost} | ${s.leftInWork} | ${s.requeuedByDdmq} / ${s.requeuedByOriginal} | ${s.runsWithPythonExceptions} of ${o.runs} | ${ex} |`);
    if (s.ddmqErrors.length) console.log(`  ddmq cleaner errors: ${s.ddmqErrors.join(' | ')}`);
  }
}

/**
 * Consumers of both tools at once (--consumers): each run publishes MESSAGES ready messages
 * and starts the consumers as the cleaners above: ddmq's (--child-drain: consume and ack
 * until the queue is empty) and the original's (`original_ops.py drain`, the consumer of its
 * README). Counts deliveries by payload.
 */
export async function oneConsumersRun({ dir, messages, consumers, python, stagger = 0 }) {
  const base = fs.mkdtempSync(join(dir, 'ddmq-interop-'));
  try {
    const root = join(base, 'root');
    const broker = await Broker.open(root, { create: true });
    await broker.createQueue('q');
    const payloads = Array.from({ length: messages }, (_, i) => `m${String(i).padStart(5, '0')}`);
    await broker.publishMany('q', payloads);
    const startAt = Date.now() + 1500;
    const results = await Promise.all(
      consumers.map((kind) => {
        const at = String(startAt + Math.random() * stagger);
        return (kind === 'ddmq' ? run(process.execPath, [SELF, '--child-drain', root, 'q', at]) : run(python, [ORIGINAL, 'drain', root, 'q', '--start-at', at])).then((r) => ({ kind, ...r }));
      }),
    );
    const delivered = new Map();
    const byKind = { ddmq: 0, original: 0 };
    for (const r of results) {
      for (const line of r.out.split('\n').filter(Boolean)) {
        const p = JSON.parse(line);
        delivered.set(p, (delivered.get(p) ?? 0) + 1);
        byKind[r.kind]++;
      }
    }
    const qdir = join(root, 'q');
    const left = fs.readdirSync(qdir).filter((n) => READY_RE.test(n)).length + fs.readdirSync(join(qdir, 'work')).filter((n) => n.includes('.ddmq')).length;
    const deliveries = [...delivered.values()].reduce((a, b) => a + b, 0);
    const exceptions = {};
    const ddmqErrors = [];
    let emptyButReady = 0;
    for (const r of results) {
      if (r.kind === 'original' && r.code !== 0) {
        const e = exceptionOf(r.err);
        exceptions[e] = (exceptions[e] ?? 0) + 1;
      }
      const empties = /^empty-but-ready: (\d+)$/m.exec(r.err);
      if (empties) emptyButReady += Number(empties[1]);
      const err = r.err.replace(/^empty-but-ready: \d+\n?/m, '');
      if (r.kind === 'ddmq' && (r.code !== 0 || err !== '')) ddmqErrors.push(err.trim() || `exit ${r.code}`);
    }
    return { emptyButReady, deliveries, duplicates: deliveries - delivered.size, lost: payloads.filter((p) => !delivered.has(p)).length - left, left, byKind, exceptions, ddmqErrors };
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
}

/** A ddmq consumer: from START_AT_MS, consume and ack until the queue is empty; prints each payload. */
async function childDrain(root, queue, startAt) {
  const broker = await Broker.open(root, { onWarning: (w) => process.stderr.write(`warning: ${w.message}\n`) });
  await new Promise((r) => setTimeout(r, Math.max(0, startAt - Date.now() - 5)));
  while (Date.now() < startAt); // spin the last milliseconds
  const out = [];
  let emptyButReady = 0;
  for (;;) {
    const [m] = await broker.consume(queue);
    if (!m) {
      // Stop when the folder holds no ready message; count the empty answers that came while some did.
      const ready = fs.readdirSync(join(root, queue)).filter((n) => READY_RE.test(n)).length;
      if (ready === 0) break;
      emptyButReady++;
      continue;
    }
    out.push(JSON.stringify(m.message));
    await broker.ack(m);
  }
  process.stdout.write(out.length ? `${out.join('\n')}\n` : '');
  if (emptyButReady > 0) process.stderr.write(`empty-but-ready: ${emptyButReady}\n`);
}

/** A ddmq cleaner: sleeps to just before START_AT_MS, spins to it, cleans, prints the result. */
async function childClean(root, queue, startAt) {
  const broker = await Broker.open(root, { onWarning: (w) => process.stderr.write(`warning: ${w.message}\n`) });
  await new Promise((r) => setTimeout(r, Math.max(0, startAt - Date.now() - 5)));
  while (Date.now() < startAt); // spin the last milliseconds
  const [r] = await broker.clean(queue);
  process.stdout.write(`${JSON.stringify(r)}\n`);
}

if (process.argv[1] === SELF) {
  const [flag, ...rest] = process.argv.slice(2);
  const child = { '--child-clean': childClean, '--child-drain': childDrain }[flag];
  (child ? child(rest[0], rest[1], Number(rest[2])) : main()).catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
