/** `ddmq work ROOT QUEUE [options] -- COMMAND [ARGS...]`, run as a child process. */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Broker } from '../src/index.js';
import { CLI, tempDir } from './helpers.js';

async function queueOf(texts: string[], settings = {}) {
  const dir = tempDir();
  const root = join(dir, 'root');
  const broker = await Broker.open(root, { create: true });
  await broker.createQueue('q', settings);
  for (const t of texts) await broker.publish('q', t);
  return { dir, root, broker };
}

function ddmq(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('ddmq work', () => {
  it('runs the command per message with {} substituted, the text in DDMQ_MESSAGE and on stdin; exit 0 acks', async () => {
    const { dir, root, broker } = await queueOf(['alpha', 'beta gamma']);
    const log = join(dir, 'log');
    const r = ddmq('work', root, 'q', '--idle-exit', '1', '--', 'sh', '-c', `printf '%s|%s|%s\\n' "$1" "$DDMQ_MESSAGE" "$(cat)" >> ${log}`, 'sh', '{}');
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(fs.readFileSync(log, 'utf8').trim().split('\n').sort(), ['alpha|alpha|alpha', 'beta gamma|beta gamma|beta gamma']);
    assert.match(r.err, /2 done, 0 failed/);
    assert.deepEqual((await broker.counts('q'))[0]!.ready + (await broker.counts('q'))[0]!.inFlight, 0);
  });

  it('a failing command nacks its message (requeued within its limit); exit 6', async () => {
    const { root, broker } = await queueOf([], { retry_delay: 0 });
    await broker.publish('q', 'bad', { requeueLimit: 1 });
    const r = ddmq('work', root, 'q', '--idle-exit', '1', '--format', 'json', '--', 'false');
    assert.equal(r.code, 6);
    const events = r.out.trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(events.map((e) => [e.event, e.action]), [['failed', 'requeued'], ['failed', 'dropped']]);
    assert.match(events[0].error, /exit code 1/);
    assert.deepEqual(Object.keys(events[0]), ['event', 'id', 'message', 'action', 'due', 'error', 'exit_code', 'signal', 'ms', 'host', 'pid', 'attempt', 'stdout', 'stderr']);
    assert.deepEqual([events[0].exit_code, events[0].signal, events[0].message], [1, null, 'bad']);
    assert.equal((await broker.counts('q'))[0]!.ready, 0, 'dropped at its requeue limit');
  });

  it('-j runs commands at once, no more than asked; --max-messages stops after that many', async () => {
    const { dir, root, broker } = await queueOf(Array.from({ length: 8 }, (_, i) => `t${i}`));
    const log = join(dir, 'log');
    const script = `echo "start $(date +%s%N)" >> ${log}; sleep 0.3; echo "end $(date +%s%N)" >> ${log}`;
    let r = ddmq('work', root, 'q', '-j', '3', '--max-messages', '6', '--', 'sh', '-c', script);
    assert.equal(r.code, 0, r.err);
    const events = fs
      .readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split(' '))
      .map(([kind, t]) => ({ kind, t: BigInt(t!) }))
      .sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : 0));
    let running = 0;
    let most = 0;
    for (const e of events) {
      running += e.kind === 'start' ? 1 : -1;
      most = Math.max(most, running);
    }
    assert.equal(events.length, 12, 'six tasks ran');
    assert.ok(most > 1 && most <= 3, `at most 3 at once (saw ${most})`);
    assert.equal((await broker.counts('q'))[0]!.ready, 2, 'two were left');
    r = ddmq('work', root, 'q', '--json-message', '--', 'true');
    assert.equal(r.code, 2, 'unknown options are refused');
  });

  it('--timeout kills a command that runs too long and nacks its message', async () => {
    const { root, broker } = await queueOf([], {});
    await broker.publish('q', 'slow', { requeue: false });
    const r = ddmq('work', root, 'q', '--timeout', '1', '--idle-exit', '1', '--format', 'json', '--', 'sleep', '30');
    assert.equal(r.code, 6);
    const [event] = r.out.trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual([event.event, event.action, event.exit_code, event.signal], ['failed', 'dropped', null, 'SIGTERM']);
    assert.match(event.error, /timed out after 1 s/);
  });

  it('SIGTERM: no new messages; a command that ends within the grace is acked; exit 143', async () => {
    const { root, broker } = await queueOf(['first', 'second']);
    const child = spawn(process.execPath, [CLI, 'work', root, 'q', '--grace', '10', '--', 'sh', '-c', 'echo started; sleep 1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    child.kill('SIGTERM');
    const code = await new Promise((r) => child.on('close', r));
    assert.equal(code, 143);
    const left = await broker.consume('q', { n: 5 });
    assert.deepEqual(left.map((m) => m.text), ['second'], 'the first finished and was acked; the second was never taken');
  });

  it('SIGINT past the grace: the command is ended and its message released (requeued, not counted as an attempt); exit 130', async () => {
    const { root, broker } = await queueOf(['long']);
    const child = spawn(process.execPath, [CLI, 'work', root, 'q', '--grace', '1', '--', 'sh', '-c', 'echo started; exec sleep 60'], { stdio: ['ignore', 'pipe', 'pipe'] });
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    child.kill('SIGINT');
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const code = await new Promise((r) => child.on('close', r));
    assert.equal(code, 130, err);
    assert.match(err, /0 done, 0 failed, 1 requeued at stop/);
    const [again] = await broker.consume('q');
    assert.deepEqual([again!.text, again!.requeueCounter], ['long', 0]);
  });

  it('shows progress on a terminal: done, failed, requeued, running, remaining, rate, ETA', async () => {
    const { dir, root } = await queueOf(Array.from({ length: 6 }, (_, i) => `t${i}`));
    const typescript = join(dir, 'typescript');
    const r = spawnSync('script', ['-q', '-e', '-c', `"${process.execPath}" "${CLI}" work "${root}" q --idle-exit 1 -- sleep 0.3`, typescript], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const screen = fs.readFileSync(typescript, 'utf8');
    assert.match(screen, /done \d+ {2}failed 0 {2}requeued 0 {2}running \d {2}remaining \d+ {2}[\d.]+\/s {2}ETA \S+/);
    assert.match(screen, /ddmq work: 6 done, 0 failed, 0 requeued at stop/);
  });

  it('runs from the json command too; a missing command is refused', async () => {
    const { root } = await queueOf(['x']);
    let r = ddmq('json', JSON.stringify({ cmd: 'work', root, queue: 'q', idle_exit: 1, exec: ['true'] }));
    assert.equal(r.code, 0, r.err);
    r = ddmq('json', JSON.stringify({ cmd: 'work', root, queue: 'q', exec: [] }));
    assert.equal(r.code, 2);
    assert.match(r.err, /non-empty array of strings/);
    r = ddmq('work', root, 'q');
    assert.equal(r.code, 2);
  });
});
