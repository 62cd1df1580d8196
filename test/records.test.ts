/**
 * Task records (ROOT/.ddmq/records/QUEUE/HOST-PID-START.jsonl) and what stats makes of
 * them: one record per finished task whatever its outcome, one file per writer, bounded
 * by age and size, nothing outside the root.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Broker, work } from '../src/index.js';
import fc from 'fast-check';
import { encodeRecordLine, OUTCOMES, parseRecords, type TaskRecord } from '../src/format/records.js';
import { prometheusText } from '../src/format/stats.js';
import { CLI, DIST, ls, manualClock, patchFs, setMtime, snapshot, tempDir } from './helpers.js';

async function setup(settings: Record<string, unknown> = {}, clock?: { now: () => number }) {
  const root = join(tempDir(), 'root');
  const warnings: string[] = [];
  const broker = await Broker.open(root, { create: true, now: clock?.now, onWarning: (w) => warnings.push(w.message) });
  await broker.createQueue('q', settings);
  return { root, broker, warnings, dir: join(root, '.ddmq', 'records', 'q') };
}

async function all(broker: Broker, queue?: string): Promise<TaskRecord[]> {
  const out: TaskRecord[] = [];
  for await (const r of broker.records(queue)) out.push(r);
  return out;
}

describe('record lines', () => {
  it('encodeRecordLine writes exactly what JSON.stringify does, for any strings and numbers', () => {
    const text = fc.oneof(fc.string(), fc.string({ unit: 'grapheme' }), fc.string({ unit: 'binary' }), fc.constantFrom('q', 'node-17.cluster', 'a"b', 'x\\y', '\u2028', 'é', '\x1b[2J'));
    const num = fc.oneof(fc.integer(), fc.double(), fc.constant(-0), fc.constant(Number.MAX_SAFE_INTEGER));
    const orNull = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: null });
    const record = fc.record({
      queue: text,
      id: text,
      host: text,
      pid: num,
      start: orNull(num),
      end: num,
      runtime_ms: orNull(num),
      outcome: fc.constantFrom(...OUTCOMES),
      action: fc.constantFrom('acked', 'requeued', 'dead-lettered', 'dropped', null),
      exit_code: orNull(num),
      signal: orNull(text),
      attempt: orNull(num),
      error: orNull(text),
    }) as fc.Arbitrary<TaskRecord>;
    fc.assert(fc.property(record, (r) => encodeRecordLine(r) === JSON.stringify(r) + '\n'), { numRuns: 5000 });
  });
});

describe('task records', () => {
  it('every outcome leaves one record: done, failed (retried, dead-lettered, dropped), released, expired, lease lost', async () => {
    const clock = manualClock();
    const { broker, dir } = await setup({ retry_delay: 0, requeue_limit: 1, dead_letter: 'dead' }, clock);
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push((await broker.publish('q', `m${i}`)).id);
    const [a, b, c, d, e, f] = await broker.consume('q', { n: 6 });
    clock.advance(250);
    await broker.ack(a!, { exitCode: 0, signal: null });
    await broker.nack(b!, { error: 'exit 3', exitCode: 3 }); // retried (counter 0 < limit 1)
    await broker.nack(c!, { requeue: false, signal: 'SIGKILL', exitCode: null }); // dropped
    await broker.release(d!);
    // e: failed at its limit: dead-lettered.
    const [again] = await broker.consume('q'); // b's requeue, first in line at requeue_prio 0
    assert.equal(again!.id, b!.id);
    await broker.nack(again!, { error: 'exit 4' }); // second failure of b: at its limit, dead-lettered
    // f: its lease runs out and a cleaner takes it back.
    clock.advance((600 + 31) * 1000);
    await broker.clean('q');
    const records = await all(broker, 'q');
    const by = (id: string) => records.filter((r) => r.id === id).map((r) => `${r.outcome}/${r.action}`);
    assert.deepEqual(by(a!.id), ['done/acked']);
    assert.deepEqual(by(b!.id), ['failed/requeued', 'failed/dead-lettered']);
    assert.deepEqual(by(c!.id), ['failed/dropped']);
    assert.deepEqual(by(d!.id), ['released/requeued']);
    assert.deepEqual(by(e!.id).sort(), ['expired/requeued']);
    assert.deepEqual(by(f!.id).sort(), ['expired/requeued']);
    const done = records.find((r) => r.id === a!.id)!;
    assert.equal(done.runtime_ms, 250);
    assert.equal(done.exit_code, 0);
    assert.equal(done.attempt, 1);
    assert.equal(done.pid, process.pid);
    const failed = records.find((r) => r.id === b!.id && r.action === 'dead-lettered')!;
    assert.equal(failed.attempt, 2);
    assert.equal(failed.error, 'exit 4');
    assert.equal(records.find((r) => r.id === c!.id)!.signal, 'SIGKILL');
    assert.equal(records.find((r) => r.id === b!.id)!.exit_code, 3);
    // One file, this process's.
    assert.equal(ls(dir).length, 1);
    assert.match(ls(dir)[0]!, new RegExp(`-${process.pid}-\\d+\\.jsonl$`));
  });

  it('records of any text survive the buffer: non-ASCII errors, and more than the first buffer holds', async () => {
    const { broker } = await setup({ retry_delay: 0 });
    const errors = ['échec ✗', '💥'.repeat(3000), 'x'.repeat(3999) + '€'];
    for (let i = 0; i < 400; i++) await broker.publish('q', i);
    let i = 0;
    for (const m of await broker.consume('q', { n: 400 })) await broker.nack(m, { error: errors[i++ % errors.length]! });
    broker.close();
    const got = await all(broker, 'q');
    assert.equal(got.length, 400);
    assert.deepEqual(
      got.slice(0, 3).map((r) => r.error),
      errors.map((e) => e.slice(0, 4000)),
    );
    assert.ok(got.every((r, k) => r.error === errors[k % errors.length]!.slice(0, 4000)));
  });

  it('a worker records its lease lost, and what the handler returned or threw (exit code, signal)', async () => {
    const { broker, root } = await setup();
    for (let i = 0; i < 3; i++) await broker.publish('q', `m${i}`);
    const w = work(
      broker,
      'q',
      async (msg, { signal }) => {
        if (msg.message === 'm0') return { exitCode: 0, signal: null };
        if (msg.message === 'm1') throw Object.assign(new Error('killed'), { exitCode: null, signal: 'SIGTERM' });
        // m2: its file is taken away under it, so the next renewal finds it gone.
        for (const n of ls(join(root, 'q', 'work'))) fs.unlinkSync(join(root, 'q', 'work', n));
        await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      },
      { lease: 1, idleExit: 0.5, idleIgnoresInFlight: true },
    );
    const stats = await w.done;
    assert.equal(stats.leaseLost, 1);
    const records = await all(broker, 'q');
    const outcomes = records.map((r) => `${r.outcome}:${r.exit_code}:${r.signal}`).sort();
    assert.deepEqual(outcomes, ['done:0:null', 'failed:null:SIGTERM', 'lease-lost:null:null']);
    assert.match(records.find((r) => r.outcome === 'lease-lost')!.error!, /lease|not in flight/i);
  });

  it('a task released at a stop keeps how it ended (signal or exit code) in its record, its joblog line and its JSON event', async () => {
    const cases = [
      // --grace 0: the worker ends the task at once with SIGTERM, and it dies of it.
      { name: 'ended by the worker', grace: '0', script: 'echo started >&2; exec sleep 30', kill: true, record: [null, 'SIGTERM'], joblog: ['-1', '15'] },
      // It traps the TERM the worker sends it and exits 3 by itself.
      { name: 'trapped the TERM', grace: '0', script: 'trap "exit 3" TERM; echo started >&2; sleep 30 & wait', kill: true, record: [3, null], joblog: ['3', '0'] },
      // A TERM sent to the whole job (scancel): the worker and the task both get it, the task dies of it.
      { name: 'TERM to the whole job', grace: '30', script: 'kill -TERM $PPID $$; sleep 30', kill: false, record: [null, 'SIGTERM'], joblog: ['-1', '15'] },
    ] as const;
    for (const c of cases) {
      const { broker, root } = await setup();
      const { id } = await broker.publish('q', 'x');
      const log = join(tempDir(), 'joblog.tsv');
      const args = [CLI, 'work', root, 'q', '--grace', c.grace, '--joblog', log, '--format', 'json', '--', 'sh', '-c', c.script];
      const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
      const started = new Promise<void>((resolve) =>
        child.stderr.setEncoding('utf8').on('data', (d) => {
          err += d;
          if (err.includes('started')) resolve();
        }),
      );
      const closed = new Promise((resolve) => child.on('close', resolve));
      if (c.kill) {
        await started;
        child.kill('SIGTERM');
      }
      assert.equal(await closed, 143, `${c.name}: ${err}`);
      const [record, ...more] = await all(broker, 'q');
      assert.deepEqual(more, [], c.name);
      assert.deepEqual([record!.id, record!.outcome, record!.action, record!.exit_code, record!.signal], [id, 'released', 'requeued', ...c.record], c.name);
      const [header, line, ...rest] = fs.readFileSync(log, 'utf8').trimEnd().split('\n');
      assert.deepEqual(rest, [], c.name);
      const col = (name: string) => line!.split('\t')[header!.split('\t').indexOf(name)];
      assert.deepEqual([col('MessageId'), col('Outcome'), col('Exitval'), col('Signal')], [id, 'released', ...c.joblog], c.name);
      const events = out.trim().split('\n').map((l) => JSON.parse(l));
      assert.deepEqual(events.map((e) => [e.event, e.id, e.exit_code, e.signal]), [['released', id, ...c.record]], c.name);
    }
  });

  it('a one-shot `ddmq ack` and `ddmq nack` record too (attempt read from the file; start unknown)', async () => {
    const { broker, root } = await setup();
    await broker.publish('q', 'x');
    await broker.publish('q', 'y');
    const [x, y] = await broker.consume('q', { n: 2 });
    assert.equal(spawnSync(process.execPath, [CLI, 'ack', '-s', root, 'q', x!.filename]).status, 0);
    assert.equal(spawnSync(process.execPath, [CLI, 'nack', '-s', '--drop', root, 'q', y!.filename]).status, 0);
    const records = await all(broker);
    assert.deepEqual(records.map((r) => [r.id, r.outcome, r.action, r.attempt, r.start]).sort(), [
      [x!.id, 'done', 'acked', 1, null],
      [y!.id, 'failed', 'dropped', 1, null],
    ].sort());
    assert.ok(records.every((r) => r.pid !== process.pid));
  });

  it('history: false writes nothing', async () => {
    const { broker, root } = await setup({ history: false });
    await broker.publish('q', 'x');
    const [m] = await broker.consume('q');
    await broker.ack(m!);
    broker.close();
    assert.deepEqual(ls(root).filter((n) => n.startsWith('.ddmq')), []);
    assert.deepEqual(await all(broker), []);
  });

  it('records are buffered and written at most once a second, and at close', async () => {
    const { broker, dir } = await setup();
    for (let i = 0; i < 3; i++) await broker.publish('q', i);
    for (const m of await broker.consume('q', { n: 3 })) await broker.ack(m);
    assert.deepEqual(ls(dir), [], 'nothing written yet');
    broker.close();
    assert.equal(fs.readFileSync(join(dir, ls(dir)[0]!), 'utf8').trim().split('\n').length, 3);
  });

  it('a half-written last line (a writer killed mid-write) is skipped; the whole lines are read', async () => {
    const { broker, dir } = await setup();
    await broker.publish('q', 'x');
    await broker.ack((await broker.consume('q'))[0]!);
    broker.close();
    const file = join(dir, ls(dir)[0]!);
    const line = fs.readFileSync(file, 'utf8').trim();
    fs.appendFileSync(file, line.slice(0, line.length - 7)); // no closing brace, no newline
    // A line cut where a brace stands (an error text with a "}" in it) is no record either.
    const braced = line.replace('"error":null', '"error":"a } b"');
    fs.writeFileSync(join(dir, 'otherhost-123-1.jsonl'), `${line}\n${braced.slice(0, braced.indexOf('}') + 1)}\n${line.slice(0, 40)}`);
    assert.equal((await all(broker)).length, 2);
    assert.equal(parseRecords(`${line}\n{"queue":"q"}\nnot json\nnot json}\n${line.slice(0, -1)}`).length, 1);
  });

  it('two processes at once each append to a file of their own; every record is whole', async () => {
    const { broker, root, dir } = await setup();
    await broker.publishMany('q', Array.from({ length: 2000 }, (_, i) => i));
    const script =
      `const { Broker } = await import(${JSON.stringify(DIST)});` +
      `const b = await Broker.open(${JSON.stringify(root)});` +
      `for (;;) { const ms = await b.consume('q', { n: 10 }); if (ms.length === 0) break; for (const m of ms) await b.ack(m, { exitCode: 0 }); }` +
      `b.close();`;
    const run = () =>
      new Promise<number | null>((resolve) => spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: 'inherit' }).on('close', resolve));
    assert.deepEqual(await Promise.all([run(), run()]), [0, 0]);
    const files = ls(dir);
    assert.equal(files.length, 2, files.join(', '));
    const records = await all(broker);
    assert.equal(records.length, 2000);
    assert.equal(new Set(records.map((r) => r.id)).size, 2000);
    assert.equal(new Set(records.map((r) => r.pid)).size, 2);
  });

  it('clean bounds them: files older than history_max_age go, then the oldest beyond history_max_bytes; recent ones stay', async () => {
    const { broker, dir } = await setup({ history_max_age: 3600, history_max_bytes: 1500 });
    fs.mkdirSync(dir, { recursive: true });
    const line = `${JSON.stringify({ queue: 'q', id: 'x', host: 'h', pid: 1, start: null, end: 1, runtime_ms: null, outcome: 'done', action: 'acked', exit_code: null, signal: null, attempt: null, error: null })}\n`;
    const files = { 'h-1-1.jsonl': 7200e3, 'h-2-1.jsonl': 3000e3, 'h-3-1.jsonl': 2000e3, 'h-4-1.jsonl': 1000e3, 'h-5-1.jsonl': 60e3, 'h-6-1.jsonl': 30e3 };
    for (const [name, age] of Object.entries(files)) {
      fs.writeFileSync(join(dir, name), line.repeat(Math.ceil(1000 / line.length)));
      setMtime(join(dir, name), age);
    }
    const size = fs.statSync(join(dir, 'h-1-1.jsonl')).size;
    assert.ok(size >= 1000 && size < 1300);
    // Age alone first (no size bound to speak of): only h-1, older than history_max_age, goes.
    await broker.setSettings('q', { history_max_bytes: 1e9 });
    await broker.clean('q');
    assert.deepEqual(ls(dir), ['h-2-1.jsonl', 'h-3-1.jsonl', 'h-4-1.jsonl', 'h-5-1.jsonl', 'h-6-1.jsonl']);
    await broker.setSettings('q', { history_max_bytes: 1500 });
    await broker.clean('q');
    // Then 5 files (> 1500 bytes): h-2, h-3, h-4 go, oldest first; h-5 and h-6 were
    // written in the last 10 minutes: never dropped for size, even over the bound.
    assert.deepEqual(ls(dir), ['h-5-1.jsonl', 'h-6-1.jsonl']);
  });

  it('clean over every queue bounds the records of deleted queues too, by the root settings, and removes their folders once empty', async () => {
    const { broker, root } = await setup({ history_max_age: 30 * 86400, history_max_bytes: 1e6 }); // q: its own bounds
    await broker.setSettings(undefined, { history_max_age: 3600 }); // the root: an hour
    const records = join(root, '.ddmq', 'records');
    const line = `${JSON.stringify({ queue: 'x', id: 'x', host: 'h', pid: 1, start: null, end: 1, runtime_ms: null, outcome: 'done', action: 'acked', exit_code: null, signal: null, attempt: null, error: null })}\n`;
    const plant = (queue: string, name: string, ageMs: number) => {
      fs.mkdirSync(join(records, queue), { recursive: true });
      fs.writeFileSync(join(records, queue, name), line);
      setMtime(join(records, queue, name), ageMs);
    };
    const hours = (n: number) => n * 3600e3;
    plant('gone', 'h-1-1.jsonl', hours(2)); // old by the root's hour, not by the default week
    plant('half', 'h-1-1.jsonl', hours(2));
    plant('half', 'h-2-1.jsonl', 60e3); // written a minute ago: kept, and its folder with it
    plant('q', 'h-1-1.jsonl', hours(2)); // a queue that exists: its own settings apply (a month, 1 MB)
    plant('bad.name', 'h-1-1.jsonl', hours(2)); // not a queue's name: not ddmq's to prune
    fs.mkdirSync(join(root, 'nodir')); // a folder without a ddmq.yaml is no queue: its records are a deleted queue's
    plant('nodir', 'h-1-1.jsonl', hours(2));
    const tree = () => Object.fromEntries(ls(records).map((q) => [q, ls(join(records, q))]));
    const before = tree();

    await broker.clean(['q']); // a list names its queues only
    assert.deepEqual(tree(), before);
    await broker.clean();
    assert.deepEqual(tree(), { 'bad.name': ['h-1-1.jsonl'], half: ['h-2-1.jsonl'], q: ['h-1-1.jsonl'] });

    // The CLI, with the root's setting removed: the default history_max_age (7 days).
    await broker.setSettings(undefined, { history_max_age: null });
    plant('gone', 'h-1-1.jsonl', hours(2));
    plant('gone', 'h-2-1.jsonl', hours(8 * 24));
    plant('gone2', 'h-1-1.jsonl', hours(8 * 24));
    const r = spawnSync(process.execPath, [CLI, 'clean', root], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(tree(), { 'bad.name': ['h-1-1.jsonl'], gone: ['h-1-1.jsonl'], half: ['h-2-1.jsonl'], q: ['h-1-1.jsonl'] });
    // history_max_bytes of the root: the oldest files beyond it go, the folder once empty.
    await broker.setSettings(undefined, { history_max_bytes: 1 });
    setMtime(join(records, 'half', 'h-2-1.jsonl'), hours(1));
    await broker.clean();
    assert.deepEqual(tree(), { 'bad.name': ['h-1-1.jsonl'], q: ['h-1-1.jsonl'] });
  });

  it('a records folder removed by a cleaner just before a writer appends is made again: no record lost', async () => {
    const { broker, dir, warnings } = await setup();
    await broker.publish('q', 'x');
    await broker.ack((await broker.consume('q'))[0]!);
    let removed = 0;
    const restore = patchFs('openSync', (original) => ((path: fs.PathLike, ...rest: unknown[]) => {
      // The cleaner's rmdir of the (empty) folder, between the writer's mkdir and its open.
      if (String(path).endsWith('.jsonl') && removed++ === 0) fs.rmdirSync(dir);
      return (original as (...a: unknown[]) => number)(path, ...rest);
    }) as typeof fs.openSync);
    try {
      broker.close();
    } finally {
      restore();
    }
    assert.equal(removed, 2, 'opened twice');
    assert.deepEqual(warnings, []);
    assert.equal((await all(broker, 'q')).length, 1);
  });

  it('a link in place of .ddmq, records/ or the queue folder is refused: nothing written through it, a warning, the message acked', async () => {
    for (const level of ['.ddmq', '.ddmq/records', '.ddmq/records/q']) {
      const { broker, root, warnings } = await setup();
      const canary = join(tempDir(), 'canary');
      fs.mkdirSync(join(canary, 'records', 'q'), { recursive: true });
      fs.writeFileSync(join(canary, 'records', 'q', 'keep.jsonl'), 'canary\n');
      const parts = level.split('/');
      fs.mkdirSync(join(root, ...parts.slice(0, -1)), { recursive: true });
      const target = parts.length === 1 ? canary : parts.length === 2 ? join(canary, 'records') : join(canary, 'records', 'q');
      fs.symlinkSync(target, join(root, level));
      const before = snapshot(canary);
      await broker.publish('q', 'x');
      const [m] = await broker.consume('q');
      await broker.ack(m!);
      broker.close();
      assert.deepEqual(ls(join(root, 'q', 'work')), [], 'the ack went through');
      assert.deepEqual(snapshot(canary), before, `canary unchanged (${level})`);
      // The write, and the prune of consume's own clean: each a warning naming the link.
      assert.ok(warnings.length >= 1 && warnings.every((w) => /symbolic link/.test(w)), warnings.join('\n'));
      assert.ok(warnings.some((w) => /could not be written \(1 lost\)/.test(w)));
      await assert.rejects(all(broker), { code: 'UNSAFE_PATH' });
      await broker.clean('q'); // pruning through the link is refused too: a warning, the clean goes on
      assert.deepEqual(snapshot(canary), before);
    }
  });
});

describe('stats', () => {
  it('are exact for a scripted run', async () => {
    const t0 = Date.UTC(2024, 4, 1, 12, 0, 0);
    const clock = manualClock(t0);
    const { broker } = await setup({ retry_delay: 0 }, clock);
    await broker.createQueue('other');
    for (let i = 0; i < 14; i++) await broker.publish('q', i);
    // 10 done, runtimes 100, 200, ... 1000 ms, ending one every 6 s from t0.
    for (let i = 1; i <= 10; i++) {
      const [m] = await broker.consume('q');
      clock.advance(i * 100);
      await broker.ack(m!, { exitCode: 0 });
      clock.advance(6000 - i * 100);
    }
    // Two failures with one error, one with another; one left in flight.
    for (const error of ['exit 1', 'exit 1', 'exit 2']) await broker.nack((await broker.consume('q'))[0]!, { error });
    await broker.consume('q');
    const s = await broker.stats(undefined, { since: t0 });
    const q = s.queues.find((x) => x.queue === 'q')!;
    assert.deepEqual(q.current, { ready: 3, delayed: 0, in_flight: 1, expired: 0, corrupt: 0 });
    assert.deepEqual(q.all_time, { done: 10, failed: 3, retried: 3, released: 0, dead_lettered: 0, dropped: 0, lease_lost: 0, expired: 0 });
    assert.deepEqual(q.since, q.all_time);
    assert.deepEqual(q.runtime_ms, { count: 10, p50: 500, p90: 900, p99: 1000, max: 1000 });
    // 10 done between t0 (first consume) and t0 + 60 s.
    assert.equal(q.rate_per_minute, 10);
    assert.equal(q.eta_seconds, 24); // 4 left at 10 a minute
    assert.deepEqual(q.throughput, [{ minute: '2024-05-01T12:00:00.000Z', done: 10, failed: 0 }, { minute: '2024-05-01T12:01:00.000Z', done: 0, failed: 3 }]);
    assert.deepEqual(q.workers, { [Object.keys(q.workers)[0]!]: 1 });
    assert.deepEqual(q.top_errors, [{ error: 'exit 1', count: 2 }, { error: 'exit 2', count: 1 }]);
    assert.deepEqual(s.queues.find((x) => x.queue === 'other')!.all_time.done, 0);
    assert.equal(s.total.all_time.done, 10);
    // A later window: nothing in it, the all-time counts unchanged.
    const later = await broker.stats('q', { since: t0 + 60_000 });
    assert.equal(later.queues[0]!.since.done, 0);
    assert.equal(later.queues[0]!.since.failed, 3);
    assert.equal(later.queues[0]!.all_time.done, 10);
  });

  it('the Prometheus text format: HELP and TYPE per metric, escaped labels, numbers; --prometheus FILE is written atomically', async () => {
    const { broker, root } = await setup();
    await broker.publish('q', 'x');
    await broker.nack((await broker.consume('q'))[0]!, { error: 'a "quoted"\nerror' });
    broker.close();
    // Another writer's record, whose host name needs escaping as a label value.
    const other = { queue: 'q', id: 'x', host: 'odd "host"\\\nname', pid: 1, start: null, end: Date.now(), runtime_ms: null, outcome: 'done', action: 'acked', exit_code: 0, signal: null, attempt: 1, error: null };
    fs.writeFileSync(join(root, '.ddmq', 'records', 'q', 'odd-1-1.jsonl'), `${JSON.stringify(other)}\n`);
    const text = prometheusText(await broker.stats());
    assert.ok(text.endsWith('\n'));
    for (const line of text.trimEnd().split('\n')) {
      assert.match(line, /^(# (HELP|TYPE) ddmq_[a-z_]+ .+|ddmq_[a-z_]+(\{([a-z_]+="([^"\\\n]|\\["\\n])*",?)+\})? -?[0-9.e+-]+)$/, line);
    }
    assert.match(text, /^ddmq_tasks\{queue="q",outcome="failed"\} 1$/m);
    assert.ok(text.includes('ddmq_workers{queue="q",host="odd \\"host\\"\\\\\\nname"} 1\n'), text);
    assert.match(text, /^# TYPE ddmq_messages gauge$/m);
    const out = join(tempDir(), 'ddmq.prom');
    fs.writeFileSync(out, 'the last run\n');
    const held = fs.openSync(out, 'r'); // a reader (the collector) that has the last run open
    const r = spawnSync(process.execPath, [CLI, 'stats', root, '--prometheus', out], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(fs.readFileSync(out, 'utf8'), /^ddmq_messages\{queue="q",state="delayed"\} 1$/m);
    // Replaced by a rename, not rewritten in place: the reader still sees the last run whole.
    assert.equal(fs.readFileSync(held, 'utf8'), 'the last run\n');
    fs.closeSync(held);
    assert.deepEqual(ls(join(out, '..')), ['ddmq.prom'], 'no temporary file left');
    const json = spawnSync(process.execPath, [CLI, 'stats', root, 'q', '--since', '1h', '--format', 'json'], { encoding: 'utf8' });
    assert.equal(json.status, 0, json.stderr);
    assert.equal(JSON.parse(json.stdout).since.failed, 1);
    const bad = spawnSync(process.execPath, [CLI, 'stats', root, '--since', 'yesterday'], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
  });
});

describe('hostile record files', () => {
  const line = (over: Record<string, unknown>) =>
    JSON.stringify({ queue: 'q', id: 'i', host: 'h', pid: 1, start: null, end: Date.now(), runtime_ms: null, outcome: 'failed', action: 'requeued', exit_code: 1, signal: null, attempt: 1, error: 'e', ...over }) + '\n';

  it('a record naming another queue ("other", "../x") is not counted, for its folder or the queue it names', async () => {
    const { root, broker, dir } = await setup();
    await broker.createQueue('other');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(join(dir, 'evil-1-1.jsonl'), line({ queue: 'other' }) + line({ queue: '../x' }) + line({ id: 'mine' }));
    assert.deepEqual((await all(broker, 'q')).map((r) => r.id), ['mine']);
    const stats = await broker.stats();
    assert.deepEqual(stats.queues.map((q) => [q.queue, q.all_time.failed]), [['other', 0], ['q', 1]]);
    const tail = broker.followRecords();
    assert.deepEqual(tail.poll(['q', 'other', '../x']).map((r) => r.id), ['mine']);
    const r = spawnSync(process.execPath, [CLI, 'stats', root, 'q', '--format', 'json'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual([JSON.parse(r.stdout)].flat().map((q: { queue: string }) => q.queue), ['q']);
  });

  it('times no date can hold (1e300) and pids that are no integers make a line no record', async () => {
    const { broker, dir } = await setup();
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(join(dir, 'evil-1-1.jsonl'), line({ end: 1e300 }) + line({ start: -1e300 }) + line({ pid: 1.5 }) + '{"queue":"q","pid":1e400}\n' + line({ id: 'ok' }));
    assert.deepEqual((await all(broker, 'q')).map((r) => r.id), ['ok']);
  });

  it('a line longer than a read chunk (17 MiB, no newline for long) is skipped, the records after it read, by records() and a tail', async () => {
    const { broker, dir } = await setup();
    fs.mkdirSync(dir, { recursive: true });
    const file = join(dir, `evil-1-${Date.now()}.jsonl`); // a writer of now: the tail keeps reading its file
    fs.writeFileSync(file, line({ id: 'a' }) + '{"queue":"q",' + 'x'.repeat(17 * 1024 * 1024) + '}\n' + line({ id: 'b' }));
    assert.deepEqual((await all(broker, 'q')).map((r) => r.id), ['a', 'b']);
    const tail = broker.followRecords();
    assert.deepEqual(tail.poll(['q']).map((r) => r.id), ['a', 'b']);
    fs.appendFileSync(file, 'y'.repeat(17 * 1024 * 1024)); // a huge line not ended: not read again and again
    assert.deepEqual(tail.poll(['q']), []);
    fs.appendFileSync(file, '\n' + line({ id: 'c' }));
    assert.deepEqual(tail.poll(['q']).map((r) => r.id), ['c']);
  });
});

describe('--prometheus to odd places', () => {
  it('a folder or a FIFO (as /dev/full) is refused and left as it is; a link keeps leading to the file, which is written', async () => {
    const { root, broker } = await setup();
    broker.close();
    const dir = tempDir();
    const folder = join(dir, 'folder');
    fs.mkdirSync(folder);
    const fifo = join(dir, 'fifo');
    spawnSync('mkfifo', [fifo]);
    for (const place of [folder, fifo]) {
      const r = spawnSync(process.execPath, [CLI, 'stats', root, '--prometheus', place], { encoding: 'utf8', timeout: 10_000 });
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /^ddmq: error: --prometheus .*: not a regular file/);
    }
    assert.ok(fs.lstatSync(folder).isDirectory());
    assert.ok(fs.lstatSync(fifo).isFIFO(), 'the FIFO was not replaced by a file');
    const target = join(dir, 'real.prom');
    fs.writeFileSync(target, 'old\n');
    const link = join(dir, 'link.prom');
    fs.symlinkSync(target, link);
    const r = spawnSync(process.execPath, [CLI, 'stats', root, '--prometheus', link], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(fs.lstatSync(link).isSymbolicLink(), 'the link is kept');
    assert.match(fs.readFileSync(target, 'utf8'), /^# HELP ddmq_messages/);
    assert.deepEqual(ls(dir).sort(), ['fifo', 'folder', 'link.prom', 'real.prom'], 'no temporary file left');
    const missing = spawnSync(process.execPath, [CLI, 'stats', root, '--prometheus', join(dir, 'no', 'x.prom')], { encoding: 'utf8' });
    assert.equal(missing.status, 4);
    assert.match(missing.stderr, /^ddmq: error: cannot write .*no\/x\.prom: ENOENT/);
  });
});
