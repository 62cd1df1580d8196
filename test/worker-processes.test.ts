/**
 * `ddmq work` and the processes of its tasks (issue 8): a command that cannot start,
 * Ctrl-C at a terminal, orphaned grandchildren, a second signal, a lost lease.
 *
 * Each worker runs as the leader of a process group of its own, as a shell's job would,
 * so that a test can signal the whole group as a terminal does. Every group and task pid
 * a test makes is killed in `after`, whatever happened.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Broker } from '../src/index.js';
import { CLI, REPO, tempDir } from './helpers.js';

const groups = new Set<number>();
const pids = new Set<number>();
after(() => {
  for (const g of groups) {
    try {
      process.kill(-g, 'SIGKILL');
    } catch {}
  }
  for (const p of pids) {
    try {
      process.kill(-p, 'SIGKILL');
    } catch {}
    try {
      process.kill(p, 'SIGKILL');
    } catch {}
  }
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Whether a process runs: not gone, and not a zombie waiting for a reaper. */
function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    const state = stat.slice(stat.lastIndexOf(')') + 2)[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

async function queueOf(texts: string[], settings: Record<string, unknown> = {}, publish: { requeue?: boolean } = {}) {
  const dir = tempDir();
  const root = join(dir, 'root');
  const broker = await Broker.open(root, { create: true });
  await broker.createQueue('q', settings);
  for (const t of texts) await broker.publish('q', t, publish);
  return { dir, root, broker };
}

interface Worker {
  child: ChildProcess;
  pid: number;
  out: string;
  err: string;
  /** The JSON events printed so far. */
  events(): Record<string, unknown>[];
  /** Resolves with the exit code (or the signal's name); after `ms`, kills the group and resolves 'timeout'. */
  exit(ms: number): Promise<number | string>;
}

/** Starts `ddmq work ARGS` as the leader of its own process group, as a shell starts a job. */
function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {}
}

function startWorker(args: string[]): Worker {
  const child = spawn(process.execPath, [CLI, 'work', ...args], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  groups.add(child.pid!);
  const closed = new Promise<number | string>((resolve) => child.on('close', (code, signal) => resolve(code ?? signal ?? 'none')));
  const w: Worker = {
    child,
    pid: child.pid!,
    out: '',
    err: '',
    events: () =>
      w.out
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    exit: (ms) =>
      Promise.race([
        closed,
        new Promise((resolve) => setTimeout(resolve, ms).unref()).then(() => {
          try {
            process.kill(-w.pid, 'SIGKILL');
          } catch {}
          return 'timeout';
        }),
      ]),
  };
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (w.out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (w.err += d));
  return w;
}

/** Waits until `check` holds (polling), failing after `ms`. */
async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** The pids tasks wrote into `dir` (one file per task, named *.pid), registered for clean-up. */
function pidFiles(dir: string): number[] {
  const found = fs
    .readdirSync(dir)
    .filter((n) => n.endsWith('.pid'))
    .map((n) => Number(fs.readFileSync(join(dir, n), 'utf8').trim()))
    .filter((p) => p > 0);
  for (const p of found) pids.add(p);
  return found;
}

describe('ddmq work: a command that cannot start', () => {
  it('is a failed task that never starves the worker: SIGTERM is handled at once even while it retries without delay', async () => {
    // retry_delay 0: the policy retries at once, for ever; the busiest a worker can be.
    const { dir, root } = await queueOf(['x'], { retry_delay: 0 });
    const script = join(dir, 'not-executable.sh');
    fs.writeFileSync(script, '#!/bin/sh\nexit 0\n', { mode: 0o644 });
    const started = Date.now();
    const w = startWorker([root, 'q', '--format', 'json', '--', script]);
    await until(() => w.events().length >= 3, 10_000, 'the worker to retry');
    // Every message would fail the same way: at most about one attempt a second, not a spin.
    const seconds = (Date.now() - started) / 1000;
    assert.ok(w.events().length <= seconds + 1, `${w.events().length} attempts in ${seconds.toFixed(1)} s`);
    const sent = Date.now();
    process.kill(w.pid, 'SIGTERM');
    const code = await w.exit(5000);
    assert.equal(code, 143, `exit on SIGTERM (took ${Date.now() - sent} ms)\n${w.err.slice(-500)}`);
    assert.ok(Date.now() - sent < 3000, `stopped within 3 s (took ${Date.now() - sent} ms)`);
    const events = w.events();
    assert.ok(events.every((e) => e.event === 'failed' && e.action === 'requeued' && /cannot run .*EACCES/.test(String(e.error))), JSON.stringify(events[0]));
  });

  it('waits out the retry policy: with the default retry_delay, one attempt in a second, the message delayed 10 s', async () => {
    const { root, broker } = await queueOf(['x']);
    const w = startWorker([root, 'q', '--format', 'json', '--', 'ddmq-test-no-such-command']);
    await sleep(1000);
    process.kill(w.pid, 'SIGTERM');
    assert.equal(await w.exit(5000), 143, w.err);
    const events = w.events();
    assert.equal(events.length, 1, JSON.stringify(events));
    const [e] = events;
    assert.deepEqual([e!.event, e!.action, e!.exit_code, e!.signal], ['failed', 'requeued', null, null]);
    assert.match(String(e!.error), /cannot run ddmq-test-no-such-command: .*ENOENT/);
    assert.ok(Number(e!.due) >= Date.now() / 1000 + 7, `due about 10 s after the attempt (${e!.due})`);
    const [c] = await broker.counts('q');
    assert.deepEqual([c!.ready, c!.delayed, c!.inFlight], [0, 1, 0]);
  });
});

describe('ddmq work: failures are said', () => {
  it('without -v, each failed task is one line on stderr saying why (a command that cannot start, an exit code)', async () => {
    const { root } = await queueOf(['x', 'y'], { requeue_limit: 0 });
    const r = await new Promise<{ code: number | null; err: string }>((resolve) => {
      const p = spawn(process.execPath, [CLI, 'work', root, 'q', '--max-messages', '1', '--', 'ddmq-test-no-such-command'], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      p.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
      p.on('close', (code) => resolve({ code, err }));
    });
    assert.equal(r.code, 6);
    assert.match(r.err, /^ddmq: failed q\/[0-9a-f]{32}: cannot run ddmq-test-no-such-command: .*ENOENT \(dropped\)$/m);
  });
});

describe('ddmq work: stopping', () => {
  const task = (dir: string) => ['sh', '-c', `echo $$ > ${dir}/$DDMQ_MESSAGE_ID.pid; exec sleep 60`];

  it('Ctrl-C (SIGINT to the whole process group) reaches only the worker; after the grace, its tasks are released untried, whatever their requeue setting; exit 130', async () => {
    const { dir, root, broker } = await queueOf(['a', 'b', 'c'], {}, { requeue: false });
    const w = startWorker([root, 'q', '-j', '3', '--grace', '1', '--kill-after', '1', '--format', 'json', '--', ...task(dir)]);
    await until(() => pidFiles(dir).length === 3, 10_000, 'three tasks to start');
    process.kill(-w.pid, 'SIGINT'); // as a terminal does
    await sleep(500);
    assert.ok(pidFiles(dir).every(alive), 'the tasks did not get the Ctrl-C: they run on within the grace');
    assert.equal(await w.exit(10_000), 130, w.err);
    const events = w.events();
    assert.deepEqual(events.map((e) => [e.event, e.action, e.signal]), [1, 2, 3].map(() => ['released', 'requeued', 'SIGTERM']));
    assert.ok(pidFiles(dir).every((p) => !alive(p)), 'no task outlives the worker');
    const again = await broker.consume('q', { n: 5 });
    assert.deepEqual(again.map((m) => [m.text, m.requeueCounter]).sort(), [['a', 0], ['b', 0], ['c', 0]]);
    assert.match(w.err, /0 done, 0 failed, 3 requeued at stop/);
  });

  it('a second SIGINT ends the grace at once', async () => {
    const { dir, root, broker } = await queueOf(['a']);
    const w = startWorker([root, 'q', '--grace', '60', '--kill-after', '1', '--format', 'json', '--', ...task(dir)]);
    await until(() => pidFiles(dir).length === 1, 10_000, 'the task to start');
    process.kill(-w.pid, 'SIGINT');
    await sleep(300);
    const sent = Date.now();
    process.kill(-w.pid, 'SIGINT');
    assert.equal(await w.exit(10_000), 130, w.err);
    assert.ok(Date.now() - sent < 3000, `ended soon after the second signal (${Date.now() - sent} ms)`);
    assert.match(w.err, /again: ending running tasks now/);
    assert.deepEqual(w.events().map((e) => e.event), ['released']);
    assert.equal((await broker.counts('q'))[0]!.ready, 1);
  });

  it('a third SIGINT kills a task that ignores SIGTERM at once, without waiting --kill-after', async () => {
    const { dir, root, broker } = await queueOf(['a']);
    const w = startWorker([root, 'q', '--grace', '60', '--kill-after', '60', '--format', 'json', '--', 'sh', '-c', `trap '' TERM; echo $$ > ${dir}/$DDMQ_MESSAGE_ID.pid; exec sleep 60`]);
    await until(() => pidFiles(dir).length === 1, 10_000, 'the task to start');
    process.kill(-w.pid, 'SIGINT');
    await sleep(200);
    process.kill(-w.pid, 'SIGINT');
    await sleep(300);
    assert.ok(pidFiles(dir).every(alive), 'SIGTERM is ignored');
    const sent = Date.now();
    process.kill(-w.pid, 'SIGINT');
    assert.equal(await w.exit(10_000), 130, w.err);
    assert.ok(Date.now() - sent < 3000, `ended soon after the third signal (${Date.now() - sent} ms)`);
    assert.deepEqual(w.events().map((e) => [e.event, e.signal]), [['released', 'SIGKILL']]);
    assert.equal((await broker.counts('q'))[0]!.ready, 1);
  });

  it('a task that dies of a signal while the worker stops (a TERM sent to every process of a job) is released, not failed', async () => {
    const { dir, root, broker } = await queueOf(['a'], {}, { requeue: false });
    const w = startWorker([root, 'q', '--grace', '30', '--format', 'json', '--', ...task(dir)]);
    await until(() => pidFiles(dir).length === 1, 10_000, 'the task to start');
    const [pid] = pidFiles(dir);
    // The task first, and the worker a moment later, as a TERM to every process of a job may come.
    process.kill(pid!, 'SIGTERM');
    await sleep(50);
    process.kill(w.pid, 'SIGTERM');
    assert.equal(await w.exit(10_000), 143, w.err);
    assert.deepEqual(w.events().map((e) => [e.event, e.action, e.signal]), [['released', 'requeued', 'SIGTERM']]);
    const [m] = await broker.consume('q');
    assert.deepEqual([m?.text, m?.requeueCounter], ['a', 0]);
  });
});

describe('ddmq work: the whole process group of a task ends with it', () => {
  // The grandchild records its pid; the shell waits for it.
  const grandchild = (dir: string, prefix = '') => ['sh', '-c', `${prefix}sleep 300 & echo $! > ${dir}/$DDMQ_MESSAGE_ID.pid; wait`];

  it('--timeout: the grandchild is gone when the failed event is printed', async () => {
    const { dir, root } = await queueOf(['a'], {}, { requeue: false });
    const w = startWorker([root, 'q', '--timeout', '1', '--kill-after', '1', '--max-messages', '1', '--format', 'json', '--', ...grandchild(dir)]);
    await until(() => pidFiles(dir).length === 1, 10_000, 'the task to start');
    const [pid] = pidFiles(dir);
    await until(() => w.events().length === 1, 10_000, 'the failed event');
    assert.equal(alive(pid!), false, 'the grandchild was ended with its task');
    const [e] = w.events();
    assert.deepEqual([e!.event, e!.action, e!.signal], ['failed', 'dropped', 'SIGTERM']);
    assert.match(String(e!.error), /timed out after 1 s/);
    assert.equal(await w.exit(10_000), 6, w.err);
  });

  it('stop: a grandchild that ignores SIGTERM is killed --kill-after seconds later, before the message is released and the worker exits', async () => {
    const { dir, root, broker } = await queueOf(['a']);
    const w = startWorker([root, 'q', '--grace', '0', '--kill-after', '1', '--format', 'json', '--', ...grandchild(dir, "trap '' TERM; ")]);
    await until(() => pidFiles(dir).length === 1, 10_000, 'the task to start');
    const [pid] = pidFiles(dir);
    const sent = Date.now();
    process.kill(w.pid, 'SIGTERM');
    assert.equal(await w.exit(10_000), 143, w.err);
    assert.equal(alive(pid!), false, 'no process of the task outlives the worker');
    assert.ok(Date.now() - sent >= 900, 'SIGKILL came after --kill-after');
    assert.deepEqual(w.events().map((e) => [e.event, e.signal]), [['released', 'SIGKILL']]);
    assert.equal((await broker.counts('q'))[0]!.ready, 1);
  });

  // Processes in groups of their own stay in the task's session: `timeout` moves itself and
  // its command to a new group, and so does a shell with job control for each job.
  const ownGroups = {
    'coreutils timeout': (dir: string) => ['sh', '-c', `timeout 300 sh -c 'echo $$ > ${dir}/$DDMQ_MESSAGE_ID.pid; exec sleep 300'`],
    'a shell with job control (set -m)': (dir: string) => ['bash', '-c', `set -m; sleep 300 & echo $! > ${dir}/$DDMQ_MESSAGE_ID.pid; wait`],
  };
  for (const [what, command] of Object.entries(ownGroups)) {
    it(`--timeout ends processes a task put in groups of their own (${what}) before the failed event`, async () => {
      const { dir, root } = await queueOf(['a'], {}, { requeue: false });
      const w = startWorker([root, 'q', '--timeout', '1', '--kill-after', '1', '--max-messages', '1', '--format', 'json', '--', ...command(dir)]);
      await until(() => pidFiles(dir).length === 1, 10_000, 'the task to start');
      const [pid] = pidFiles(dir);
      const pgid = Number(fs.readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1]!.split(' ')[2]);
      assert.notEqual(pgid, w.pid, 'the process is in a group of its own');
      await until(() => w.events().length === 1, 10_000, 'the failed event');
      assert.equal(alive(pid!), false, 'ended with its task');
      assert.equal(await w.exit(10_000), 6, w.err);
    });

    it(`a stop ends processes a task put in groups of their own (${what}) before the worker exits`, async () => {
      const { dir, root, broker } = await queueOf(['a']);
      const w = startWorker([root, 'q', '--grace', '0', '--kill-after', '1', '--format', 'json', '--', ...command(dir)]);
      await until(() => pidFiles(dir).length === 1, 10_000, 'the task to start');
      const [pid] = pidFiles(dir);
      process.kill(w.pid, 'SIGTERM');
      assert.equal(await w.exit(10_000), 143, w.err);
      assert.equal(alive(pid!), false, 'no process of the task outlives the worker');
      assert.equal((await broker.counts('q'))[0]!.ready, 1, 'released');
    });
  }

  it('a task that ignores SIGTERM and keeps forking into new groups is frozen and killed whole by --timeout', async () => {
    const { dir, root } = await queueOf(['a'], {}, { requeue: false });
    const tag = `ddmq-hopper-${process.pid}-${Date.now()}`;
    // python3 itself, not a wrapper script (pyenv's) that a SIGTERM would end before the hopper starts.
    const python = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();
    const ready = join(dir, 'hopping');
    const hopper = join(REPO, 'test', 'fixtures', 'hopper.py');
    const left = () =>
      fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
        try {
          return fs.readFileSync(`/proc/${p}/cmdline`, 'latin1').includes(tag) && alive(Number(p));
        } catch {
          return false;
        }
      });
    try {
      const w = startWorker([root, 'q', '--timeout', '3', '--kill-after', '1', '--max-messages', '1', '--format', 'json', '--', python, hopper, tag, ready]);
      assert.equal(await w.exit(20_000), 6, w.err);
      assert.ok(fs.existsSync(ready), 'the hopper was running when it was ended');
      assert.deepEqual(w.events().map((e) => [e.event, e.action]), [['failed', 'dropped']]);
      assert.deepEqual(left(), [], 'nothing of the task is left');
    } finally {
      // What a failed run leaves keeps moving: stop it (round after round), then kill it.
      for (let round = 0; round < 200; round++) for (const p of left()) signal(Number(p), 'SIGSTOP');
      for (const p of left()) signal(Number(p), 'SIGKILL');
    }
  });

  it('what a command leaves running in its group is ended before its message is acked', async () => {
    const { dir, root } = await queueOf(['a']);
    const w = startWorker([root, 'q', '--max-messages', '1', '--format', 'json', '--', 'sh', '-c', `sleep 300 & echo $! > ${dir}/$DDMQ_MESSAGE_ID.pid`]);
    assert.equal(await w.exit(10_000), 0, w.err);
    const [pid] = pidFiles(dir);
    assert.equal(alive(pid!), false);
    assert.deepEqual(w.events().map((e) => [e.event, e.exit_code]), [['done', 0]]);
  });
});

describe('ddmq work: a lost lease', () => {
  it('ends the task (its whole group): one lease-lost event, the message neither acked nor nacked', async () => {
    const { dir, root, broker } = await queueOf(['a'], { message_timeout: 1, expiry_grace: 0 });
    const w = startWorker([root, 'q', '--max-messages', '1', '--format', 'json', '--', ...['sh', '-c', `sleep 300 & echo $! > ${dir}/$DDMQ_MESSAGE_ID.pid; wait`]]);
    await until(() => pidFiles(dir).length === 1, 10_000, 'the task to start');
    const [pid] = pidFiles(dir);
    // Another host whose clock is a minute ahead takes the message back, and takes it.
    const other = await Broker.open(root, { now: () => Date.now() + 60_000 });
    assert.equal((await other.clean('q'))[0]!.requeued, 1);
    const [stolen] = await other.consume('q', { lease: 600, skipCleaning: true });
    assert.equal(stolen?.text, 'a');
    assert.equal(await w.exit(10_000), 0, w.err);
    assert.equal(alive(pid!), false, 'the task was ended');
    assert.deepEqual(w.events().map((e) => [e.event, e.action]), [['lease-lost', null]]);
    assert.match(w.err, /1 lease lost/);
    await other.ack(stolen!); // still the other host's to settle
  });
});
