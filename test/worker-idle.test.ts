/**
 * Idle exit that strands nothing (issue 8, finding 6): a worker, or the message iterator,
 * ends only when nothing in the queue can still become work. Short leases and
 * expiry_grace 0 keep these tests to a few seconds.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { IdleClock } from '../src/worker/idle.js';
import { Broker, messages, work } from '../src/index.js';
import { FakeTime } from './fake-time.js';
import { CLI, tempDir } from './helpers.js';

async function setup(settings: Record<string, unknown> = {}) {
  const root = join(tempDir(), 'root');
  const broker = await Broker.open(root, { create: true });
  await broker.createQueue('q', { expiry_grace: 0, ...settings });
  return { root, broker };
}

/** A worker on another host that took a message and died: it stays in flight until its 1 s lease runs out. */
async function deadWorkersMessage(root: string, text: string) {
  const other = await Broker.open(root);
  await other.publish('q', text);
  const [m] = await other.consume('q', { lease: 1 });
  assert.equal(m?.text, text);
}

describe('idle exit', () => {
  it("the idle time runs on the timers' clock: over exactly idleExit after the last work, and busy() starts it again", async () => {
    const time = new FakeTime();
    const root = join(tempDir(), 'root');
    const broker = await Broker.open(root, { create: true, now: time.now });
    await broker.createQueue('q', { expiry_grace: 0 });
    const idle = new IdleClock(broker, 'q', { idleExit: 10, ignoreInFlight: false }, time);
    assert.equal(idle.wait(), 5, 'waits at most 5 s before looking again');
    await time.advance(9999);
    assert.equal(await idle.over(), false);
    assert.ok(Math.abs(idle.wait() - 0.001) < 1e-9, 'the 1 ms left');
    await time.advance(1);
    assert.equal(await idle.over(), true);
    idle.busy();
    await time.advance(9999);
    assert.equal(await idle.over(), false, 'busy() started it again');
    // Something in flight elsewhere can still become work: the idle time starts again.
    await broker.publish('q', 'held');
    await (await Broker.open(root, { now: time.now })).consume('q', { lease: 60 });
    await time.advance(1);
    assert.equal(await idle.over(), false);
    assert.equal(idle.wait(), 5);
    await time.advance(30_000);
    assert.equal(await idle.over(), false, 'however long it stays in flight');
    const loose = new IdleClock(broker, 'q', { idleExit: 10, ignoreInFlight: true }, time);
    await time.advance(10_000);
    assert.equal(await loose.over(), true, 'idleIgnoresInFlight: not kept by it');
    broker.close();
  });

  it("waits for a dead worker's message in flight: its lease runs out, the worker cleans it, runs it, and only then exits", async () => {
    const { root, broker } = await setup();
    await deadWorkersMessage(root, 'orphan');
    const seen: [string, number][] = [];
    const stats = await work(broker, 'q', (m) => void seen.push([m.text, m.requeueCounter]), { idleExit: 0.5 }).done;
    assert.deepEqual(seen, [['orphan', 1]]);
    assert.equal(stats.done, 1);
    const [c] = await broker.counts('q');
    assert.deepEqual([c!.ready, c!.inFlight, c!.delayed], [0, 0, 0]);
    broker.close();
  });

  it('waits for a failed message that is due again within the idle time (its retry backoff)', async () => {
    const { broker } = await setup({ retry_delay: 1 });
    await broker.publish('q', 'flaky');
    let calls = 0;
    const stats = await work(
      broker,
      'q',
      () => {
        if (++calls === 1) throw new Error('first try fails');
      },
      { idleExit: 1 },
    ).done;
    assert.deepEqual([calls, stats.failed, stats.done], [2, 1, 1]);
    broker.close();
  });

  it('counts the idle time from the end of the last task, not from when it was taken', async () => {
    const { broker } = await setup();
    await broker.publish('q', 'long');
    let ended = 0;
    await work(broker, 'q', async () => {
      await new Promise((r) => setTimeout(r, 800));
      ended = Date.now();
    }, { idleExit: 0.5 }).done;
    assert.ok(Date.now() - ended >= 450, `idle for ${Date.now() - ended} ms after the task`);
    broker.close();
  });

  it('does not wait for a delayed message due after the idle time', async () => {
    const { broker } = await setup();
    await broker.publish('q', 'much later', { delay: 60 });
    const started = Date.now();
    const stats = await work(broker, 'q', () => {}, { idleExit: 0.3 }).done;
    assert.equal(stats.done, 0);
    assert.ok(Date.now() - started < 3000);
    broker.close();
  });

  it('idleIgnoresInFlight: exits once nothing is ready, leaving in-flight messages to their holders', async () => {
    const { root, broker } = await setup();
    await broker.publish('q', 'held');
    const other = await Broker.open(root);
    await other.consume('q', { lease: 60 });
    const started = Date.now();
    const stats = await work(broker, 'q', () => {}, { idleExit: 0.3, idleIgnoresInFlight: true }).done;
    assert.equal(stats.done, 0);
    assert.ok(Date.now() - started < 3000);
    assert.equal((await broker.counts('q'))[0]!.inFlight, 1);
    broker.close();
  });

  it("the message iterator waits the same way: it yields a dead worker's message once its lease has run out", async () => {
    const { root, broker } = await setup();
    await deadWorkersMessage(root, 'orphan');
    const texts: string[] = [];
    for await (const m of messages(broker, 'q', { idleExit: 0.5 })) {
      texts.push(m.text);
      await broker.ack(m);
    }
    assert.deepEqual(texts, ['orphan']);
    broker.close();
  });

  it('the message iterator does not wait for the messages its own caller holds (a batch not acked yet)', { timeout: 10_000 }, async () => {
    const { broker } = await setup();
    for (const t of ['a', 'b', 'c']) await broker.publish('q', t);
    const batch = [];
    for await (const m of messages(broker, 'q', { idleExit: 0.3 })) batch.push(m);
    assert.deepEqual(batch.map((m) => m.text), ['a', 'b', 'c']);
    for (const m of batch) await broker.ack(m);
    broker.close();
  });

  it("ddmq work --idle-exit runs a dead worker's task before it exits; --idle-ignore-in-flight does not wait for it", async () => {
    const { root, broker } = await setup();
    await deadWorkersMessage(root, 'orphan');
    const quick = spawnSync(process.execPath, [CLI, 'work', root, 'q', '--idle-exit', '0', '--idle-ignore-in-flight', '--format', 'json', '--', 'true'], { encoding: 'utf8' });
    assert.equal(quick.status, 0, quick.stderr);
    assert.equal(quick.stdout, '', 'it left at once');
    const r = spawnSync(process.execPath, [CLI, 'work', root, 'q', '--idle-exit', '0', '--format', 'json', '--', 'true'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(events.map((e) => [e.event, e.message, e.exit_code]), [['done', 'orphan', 0]]);
    broker.close();
  });
});
