/**
 * Many hosts on real network file systems: each rig of ../shared/netfs exports one
 * folder and mounts it twice (A and B), as two hosts would see one NFS export, each
 * with its own cache and no file-change notification between them.
 *
 * The rigs are described by DDMQ_NETFS, a JSON array of
 *   { name, a, b, truth, cacheSeconds }
 * (truth: the server-side folder, only ever read). scripts/with-netfs.sh brings the
 * sshfs, GlusterFS and MooseFS rigs up, sets it, runs a command, and takes them down:
 *   bash scripts/with-netfs.sh npm test
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { after, describe, it } from 'node:test';
import { parseRecords, safeHost, type TaskRecord } from '../src/format/records.js';
import { Broker } from '../src/index.js';
import { CLI, type ChildResult, runChild, tempDir, worker, netfsRigs } from './helpers.js';


const rigs = netfsRigs();


const messageFiles = (dir: string) => fs.readdirSync(dir).filter((n) => n.includes('.ddmq'));

for (const rig of rigs) {
  describe(`on ${rig.name}, mounted twice`, () => {
    // One fresh tree per rig, at the same place under both mounts.
    const top = `ddmq-test-${randomUUID().slice(0, 8)}`;
    const onA = join(rig.a, top);
    const onB = join(rig.b, top);
    const inTruth = join(rig.truth, top);
    fs.mkdirSync(onA);
    after(() => fs.rmSync(onA, { recursive: true, force: true })); // through a mount: never write a brick

    it('producers and consumers split across the two mounts: every message consumed exactly once', async () => {
      const root = 'race';
      const broker = await Broker.open(join(onA, root), { create: true });
      await broker.createQueue('q');
      // All processes run on this machine, so a local file tells the consumers to stop.
      const stopFile = `/tmp/${top}-race-stop`;
      const consumers = [onA, onA, onB, onB].map((m, i) => worker('consume', join(m, root), 'q', `stop:${stopFile}`, i % 2 ? 10 : 1));
      const producers = await Promise.all([onA, onB].map((m, i) => worker('produce', join(m, root), 'q', `p${i}`, 500)));
      for (const p of producers) assert.deepEqual([p.code, p.err], [0, '']);
      // The server's own view decides when all is done; the clients' views may be stale.
      const deadline = Date.now() + 120_000;
      while (messageFiles(join(inTruth, root, 'q')).length + messageFiles(join(inTruth, root, 'q', 'work')).length > 0) {
        assert.ok(Date.now() < deadline, 'the consumers did not drain the queue');
        await new Promise((r) => setTimeout(r, 200));
      }
      fs.writeFileSync(stopFile, '');
      after(() => fs.rmSync(stopFile, { force: true }));
      const seen = new Map<string, number>();
      const perMount = { a: 0, b: 0 };
      let lost = 0;
      for (const [i, r] of (await Promise.all(consumers)).entries()) {
        assert.deepEqual([r.code, r.err], [0, ''], 'consumer exited cleanly');
        const rows = r.out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
        lost += Number(rows.pop()!.lost);
        perMount[i < 2 ? 'a' : 'b'] += rows.length;
        for (const row of rows) seen.set(String(row.m), (seen.get(String(row.m)) ?? 0) + 1);
      }
      const expected = ['p0', 'p1'].flatMap((p) => Array.from({ length: 500 }, (_, i) => `${p}:${i}`));
      assert.deepEqual(expected.filter((m) => !seen.has(m)), [], 'no message lost');
      assert.deepEqual([...seen].filter(([, n]) => n > 1), [], 'no message consumed twice');
      console.log(`# ${rig.name}: consumed through A ${perMount.a}, through B ${perMount.b}; claims lost to a competitor: ${lost}`);
    });

    it('cleaners racing from both mounts requeue each expired message exactly once', async () => {
      const root = join(onA, 'clean');
      const past = await Broker.open(root, { create: true, now: () => Date.now() - 100_000 });
      await past.createQueue('q');
      const ids = new Set<string>();
      for (let i = 0; i < 400; i++) ids.add((await past.publish('q', i)).id);
      assert.equal((await past.consume('q', { n: 400, lease: 1 })).length, 400);
      const startAt = Date.now() + 2000;
      const results = await Promise.all([onA, onB, onA, onB].map((m) => worker('clean', join(m, 'clean'), 'q', startAt)));
      const requeued = results.map((r) => {
        assert.deepEqual([r.code, r.err], [0, ''], 'cleaner exited cleanly');
        return Number((JSON.parse(r.out) as { requeued: number }).requeued);
      });
      assert.equal(requeued.reduce((x, y) => x + y, 0), 400, `requeued per cleaner: ${requeued.join(', ')}`);
      const again = await (await Broker.open(root)).consume('q', { n: 1000, skipCleaning: true });
      assert.equal(again.length, 400);
      assert.deepEqual(new Set(again.map((m) => m.id)), ids);
      console.log(`# ${rig.name}: requeued per cleaner (A, B, A, B): ${requeued.join(', ')}`);
    });

    it('a message published through A is consumed through B within the documented bound, without notification', async () => {
      const onAroot = join(onA, 'visible');
      const publisher = await Broker.open(onAroot, { create: true });
      await publisher.createQueue('q');
      const consumer = await Broker.open(join(onB, 'visible'));
      assert.deepEqual(await consumer.consume('q'), []); // B has listed the empty queue: its cache is warm
      await publisher.publish('q', 'hello from A');
      const published = Date.now();
      const bound = (rig.cacheSeconds + 1) * 1000 + 3000; // the file system's cache + our listing interval + slack
      let got = null;
      while (got === null) {
        assert.ok(Date.now() - published < bound, `not visible through B after ${bound} ms`);
        await new Promise((r) => setTimeout(r, 100));
        got = await consumer.consumeOne('q', { skipCleaning: true });
      }
      assert.equal(got.text, 'hello from A');
      console.log(`# ${rig.name}: visible through B after ${Date.now() - published} ms (bound ${bound} ms)`);
    });

    it('a consumer waiting through B gets what A publishes: by polling, as no notification crosses mounts', async () => {
      const publisher = await Broker.open(join(onA, 'visible'));
      const consumer = await Broker.open(join(onB, 'visible'), { pollIntervalMs: 500 });
      const waiting = consumer.consume('q', { wait: rig.cacheSeconds + 10, skipCleaning: true });
      await new Promise((r) => setTimeout(r, 300));
      await publisher.publish('q', 'waited for');
      const started = Date.now();
      const got = await waiting;
      assert.deepEqual(got.map((m) => m.text), ['waited for']);
      console.log(`# ${rig.name}: a waiting consumer through B got it after ${Date.now() - started} ms`);
      consumer.close();
    });

    it('two `ddmq work` processes, one per mount, run 500 tasks with retries and dead letters: stats, joblogs and output files say exactly what the tasks did', async () => {
      const started = Date.now();
      const root = 'farm';
      const broker = await Broker.open(join(onA, root), { create: true });
      // Failures are retried at once; a message runs at most 3 times, then is dead-lettered.
      await broker.createQueue('q', { retry_delay: 0, requeue_limit: 2, dead_letter: 'dl' });
      await broker.createQueue('dl');
      broker.close();
      // The tasks' own account, on local disk (outside the mounts): one folder per attempt,
      // made with mkdir (atomic: a second run of the same attempt would take the next
      // number), holding "ID ATTEMPT PAYLOAD PID WORKER_PID EXIT". Their exit codes:
      // t7, t107, ... always fail (exit 5; dead-lettered after 3 runs); t3, t23, ... fail
      // their first 2 runs (exit 4), t0, t10, ... their first (exit 3); the others succeed.
      const local = tempDir('ddmq-netfs-farm-');
      const truth = join(local, 'truth');
      fs.mkdirSync(truth);
      const script = join(local, 'task.sh');
      fs.writeFileSync(
        script,
        [
          'id=$DDMQ_MESSAGE_ID; i=${1#t}; n=1',
          `while ! mkdir "${truth}/$id.$n" 2>/dev/null; do n=$((n + 1)); done`,
          'code=0',
          'if [ $((i % 100)) -eq 7 ]; then code=5',
          'elif [ $((i % 20)) -eq 3 ] && [ $n -lt 3 ]; then code=4',
          'elif [ $((i % 10)) -eq 0 ] && [ $n -lt 2 ]; then code=3',
          'fi',
          `echo "$id $n $1 $$ $PPID $code" > "${truth}/$id.$n/attempt"`,
          'echo "out $id $n $1 pid $$"',
          'echo "err $id $n $1 pid $$ exit $code" >&2',
          'echo "out2 $1 attempt $n"',
          'exit $code',
          '',
        ].join('\n'),
      );
      const runsOf = (i: number) => (i % 100 === 7 ? 3 : i % 20 === 3 ? 3 : i % 10 === 0 ? 2 : 1);
      // Published half through each mount, before the workers start.
      const payloads = new Map<string, string>(); // id -> payload
      for (const [m, from] of [[onA, 0], [onB, 250]] as const) {
        const b = await Broker.open(join(m, root));
        for (let i = from; i < from + 250; i++) payloads.set((await b.publish('q', `t${i}`)).id, `t${i}`);
        b.close();
      }
      const expectedRuns = [...payloads.values()].reduce((n, p) => n + runsOf(Number(p.slice(1))), 0); // 610

      // The workers, as on two hosts: each its own joblog, both one --output folder (on the
      // shared file system, each through its own mount).
      const mounts = { A: onA, B: onB };
      const workers = Object.entries(mounts).map(([name, m]) => {
        const joblog = join(m, 'joblog', `${name}.tsv`);
        const output = join(m, 'output');
        const p = spawn(process.execPath, [CLI, 'work', join(m, root), 'q', '-j', '8', '--idle-exit', '2', '--joblog', joblog, '--output', output, '--', 'sh', script, '{}'], {
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        let err = '';
        p.stdout.setEncoding('utf8').on('data', (d) => (out += d));
        p.stderr.setEncoding('utf8').on('data', (d) => (err += d));
        const exited = new Promise<ChildResult & { at: number }>((resolve) => p.on('close', (code) => resolve({ code, out, err, at: Date.now() })));
        after(() => p.exitCode === null && p.signalCode === null && p.kill('SIGKILL'));
        return { name, pid: p.pid!, joblog, output, exited };
      });

      // Drained, by the server's own view: nothing ready, in flight or delayed.
      const inTruthQ = join(inTruth, root, 'q');
      const left = () => [inTruthQ, join(inTruthQ, 'work'), join(inTruthQ, 'delayed')].reduce((n, d) => n + (fs.existsSync(d) ? messageFiles(d).length : 0), 0);
      const deadline = Date.now() + 240_000; // a guard against a hang only: ~30-60 s on a 2-core machine
      while (left() > 0) {
        assert.ok(Date.now() < deadline, `the workers did not drain the queue: ${left()} messages left`);
        await new Promise((r) => setTimeout(r, 200));
      }
      const drained = Date.now();
      // Then each worker ends by itself (--idle-exit), once its own view is empty too.
      const bound = (rig.cacheSeconds + 15) * 1000;
      const results = await Promise.race([
        Promise.all(workers.map((w) => w.exited)),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`the workers did not exit within ${bound} ms of the drain`)), bound).unref()),
      ]);
      const exitedAt = Date.now();

      // What the tasks say they did.
      interface Run { id: string; attempt: number; payload: string; pid: number; worker: number; code: number; last: boolean }
      const runs: Run[] = fs.readdirSync(truth).map((d) => {
        const [id, attempt, payload, pid, workerPid, code] = fs.readFileSync(join(truth, d, 'attempt'), 'utf8').trim().split(' ');
        assert.equal(d, `${id}.${attempt}`);
        return { id: id!, attempt: Number(attempt), payload: payload!, pid: Number(pid), worker: Number(workerPid), code: Number(code), last: false };
      });
      const byId = new Map<string, Run[]>();
      for (const r of runs) byId.set(r.id, [...(byId.get(r.id) ?? []), r]);
      for (const list of byId.values()) {
        list.sort((x, y) => x.attempt - y.attempt);
        list.at(-1)!.last = true;
      }
      // ... is what the policy asks: every message, each run once, in order (the queue ran
      // no message twice and lost none).
      assert.deepEqual(new Set(byId.keys()), new Set(payloads.keys()), 'every message ran');
      for (const [id, list] of byId) {
        assert.equal(list[0]!.payload, payloads.get(id));
        assert.deepEqual(list.map((r) => r.attempt), Array.from({ length: runsOf(Number(payloads.get(id)!.slice(1))) }, (_, k) => k + 1), `runs of ${payloads.get(id)}`);
      }
      assert.equal(runs.length, expectedRuns);
      const workerPids = workers.map((w) => w.pid);
      for (const r of runs) assert.ok(workerPids.includes(r.worker), `${r.id}.${r.attempt} ran under a worker (pid ${r.worker})`);
      const outcomeOf = (r: Run) => (r.code === 0 ? 'done' : r.last ? 'dead-lettered' : 'requeued');
      const expected = {
        done: runs.filter((r) => r.code === 0).length,
        failed: runs.filter((r) => r.code !== 0).length,
        retried: runs.filter((r) => r.code !== 0 && !r.last).length,
        released: 0,
        dead_lettered: runs.filter((r) => r.code !== 0 && r.last).length,
        dropped: 0,
        lease_lost: 0,
        expired: 0,
      };
      assert.deepEqual(expected, { done: 495, failed: 115, retried: 110, released: 0, dead_lettered: 5, dropped: 0, lease_lost: 0, expired: 0 });
      const key = (id: string, attempt: number) => `${id}.${attempt}`;
      const runOf = new Map(runs.map((r) => [key(r.id, r.attempt), r]));

      // Each worker ended by itself, 6 if any of its tasks failed, with nothing to warn of.
      for (const [i, w] of workers.entries()) {
        const r = results[i]!;
        const failedHere = runs.some((x) => x.worker === w.pid && x.code !== 0);
        assert.equal(r.code, failedHere ? 6 : 0, `worker ${w.name}: ${r.err.slice(-2000)}`);
        assert.equal(r.out, '', `worker ${w.name} printed nothing on stdout (the output went to files)`);
        const unexpected = r.err.split('\n').filter((l) => l !== '' && !/^ddmq: failed q\/[0-9a-f]{32}: exit code [345] \((requeued(, ready again in 0 s)?|dead-lettered)\)$/.test(l) && !/^ddmq work: \d+ done/.test(l));
        assert.deepEqual(unexpected, [], `worker ${w.name} said only its failures and its summary`);
      }

      // The dead letters are the messages whose last run failed; the queue is empty.
      const dead = messageFiles(join(inTruth, root, 'dl')).map((f) => (JSON.parse(fs.readFileSync(join(inTruth, root, 'dl', f), 'utf8')) as { id: string }).id);
      assert.deepEqual(dead.sort(), runs.filter((r) => r.code !== 0 && r.last).map((r) => r.id).sort());

      // The records on the server: one per run, saying what the task said.
      const recordsDir = join(inTruth, root, '.ddmq', 'records', 'q');
      const records: TaskRecord[] = fs.readdirSync(recordsDir).flatMap((f) => parseRecords(fs.readFileSync(join(recordsDir, f), 'utf8')));
      assert.equal(records.length, runs.length, 'one record per run');
      const recordOf = new Map(records.map((r) => [key(r.id, r.attempt!), r]));
      assert.equal(recordOf.size, records.length, 'no run recorded twice');
      for (const [k, run] of runOf) {
        const rec = recordOf.get(k);
        assert.ok(rec, `a record of ${k}`);
        const failed = run.code !== 0;
        assert.deepEqual(
          [rec.outcome, rec.action, rec.exit_code, rec.signal, rec.pid, rec.host],
          [failed ? 'failed' : 'done', failed ? (run.last ? 'dead-lettered' : 'requeued') : 'acked', run.code, null, run.worker, safeHost(hostname())],
          k,
        );
      }

      // `ddmq stats` through each mount: exactly those counts, and nothing left in the queue
      // (once the mount's cache shows the last records: they were appended at the workers' exits).
      const statsThrough = async (m: string) => {
        const r = await runChild(process.execPath, [CLI, 'stats', join(m, root), 'q', '--format', 'json']);
        assert.equal(r.code, 0, r.err);
        const { all_time, current } = JSON.parse(r.out) as { all_time: Record<string, number>; current: Record<string, number> };
        return { all_time, current };
      };
      const expectedStats = { all_time: expected, current: { ready: 0, delayed: 0, in_flight: 0, expired: 0, corrupt: 0 } };
      const statsBound = Date.now() + (rig.cacheSeconds + 10) * 1000;
      let seen: Record<string, unknown> = {};
      let looks = 0;
      for (;;) {
        looks++;
        seen = { A: await statsThrough(onA), B: await statsThrough(onB) };
        if (Object.values(seen).every((s) => isDeepStrictEqual(s, expectedStats)) || Date.now() > statsBound) break;
        await new Promise((r) => setTimeout(r, 1000));
      }
      assert.deepEqual(seen, { A: expectedStats, B: expectedStats }, 'stats through both mounts');
      const statsAgreed = Date.now();

      // The joblogs (read on the server): a header and one line per run of that worker,
      // with its exit code, outcome and output files.
      const COLUMNS = ['Seq', 'Host', 'Starttime', 'JobRuntime', 'Send', 'Receive', 'Exitval', 'Signal', 'Queue', 'MessageId', 'Attempt', 'Outcome', 'Stdout', 'Stderr', 'Command'];
      const expectedOut = (r: Run) => `out ${r.id} ${r.attempt} ${r.payload} pid ${r.pid}\nout2 ${r.payload} attempt ${r.attempt}\n`;
      const expectedErr = (r: Run) => `err ${r.id} ${r.attempt} ${r.payload} pid ${r.pid} exit ${r.code}\n`;
      const logged = new Set<string>();
      for (const w of workers) {
        const text = fs.readFileSync(join(inTruth, 'joblog', `${w.name}.tsv`), 'utf8');
        assert.ok(text.endsWith('\n'), 'every line is whole');
        const [header, ...lines] = text.slice(0, -1).split('\n');
        assert.deepEqual(header!.split('\t'), COLUMNS);
        const mine = runs.filter((r) => r.worker === w.pid);
        assert.equal(lines.length, mine.length, `joblog of ${w.name}: one line per run of its own`);
        const seqs = new Set<number>();
        for (const line of lines) {
          const f = Object.fromEntries(line.split('\t').map((v, i) => [COLUMNS[i], v])) as Record<string, string>;
          assert.equal(line.split('\t').length, COLUMNS.length, line);
          const k = key(f.MessageId!, Number(f.Attempt));
          const run = runOf.get(k);
          assert.ok(run, `joblog of ${w.name}: ${k} ran`);
          assert.equal(run.worker, w.pid, `${k} is in the joblog of the worker that ran it`);
          assert.ok(!logged.has(k), `${k} logged once`);
          logged.add(k);
          seqs.add(Number(f.Seq));
          const base = join(w.output, run.attempt === 1 ? run.id : `${run.id}.${run.attempt}`);
          assert.deepEqual(
            [f.Host, f.Send, f.Receive, f.Exitval, f.Signal, f.Queue, f.Outcome, f.Stdout, f.Stderr, f.Command],
            [hostname(), String(run.payload.length), String(expectedOut(run).length + expectedErr(run).length), String(run.code), '0', 'q', outcomeOf(run), `${base}.out`, `${base}.err`, `sh ${script} ${run.payload}`],
            `joblog line of ${k}`,
          );
        }
        assert.deepEqual([...seqs].sort((x, y) => x - y), Array.from({ length: lines.length }, (_, i) => i + 1), `joblog of ${w.name}: Seq 1..n`);
      }
      assert.equal(logged.size, runs.length);

      // Every output file (on the server) holds its own run's output and nothing else.
      const outputs = fs.readdirSync(join(inTruth, 'output')).sort();
      assert.deepEqual(outputs, runs.flatMap((r) => ['out', 'err'].map((s) => `${r.attempt === 1 ? r.id : `${r.id}.${r.attempt}`}.${s}`)).sort());
      for (const r of runs) {
        const base = join(inTruth, 'output', r.attempt === 1 ? r.id : `${r.id}.${r.attempt}`);
        assert.equal(fs.readFileSync(`${base}.out`, 'utf8'), expectedOut(r), `${base}.out`);
        assert.equal(fs.readFileSync(`${base}.err`, 'utf8'), expectedErr(r), `${base}.err`);
      }

      const perWorker = workers.map((w) => `${w.name} ${runs.filter((r) => r.worker === w.pid).length}`).join(', ');
      console.log(
        `# ${rig.name}: ${runs.length} runs of 500 tasks (${perWorker}); drained in ${drained - started} ms, workers exited ${results.map((r, i) => `${workers[i]!.name} ${r.at - drained}`).join(', ')} ms later, ` +
          `stats agreed through both mounts ${statsAgreed - exitedAt} ms after that (look ${looks}); ${Date.now() - started} ms in all`,
      );
    });
  });
}

describe('network file systems', { skip: rigs.length === 0 ? 'no rigs: run through scripts/with-netfs.sh' : false }, () => {
  it('were tested', () => assert.ok(rigs.length > 0));
});
