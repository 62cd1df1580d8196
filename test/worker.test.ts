/**
 * Waiting for messages, workers and their leases, the message iterator, and
 * `ddmq consume --wait`. No timing is asserted: each test asserts what happened.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Broker, isDdmqError, type Message, messages, work, type WorkEvent } from '../src/index.js';
import { brokerInternals } from '../src/store/internals.js';
import { FakeTime } from './fake-time.js';
import { CLI, DIST, ls, tempDir } from './helpers.js';

async function setup(settings: Record<string, unknown> = {}, options = {}) {
  const root = join(tempDir(), 'root');
  const broker = await Broker.open(root, { create: true, ...options });
  await broker.createQueue('q', settings);
  return { root, broker };
}

/** Publishes from another process, after a delay: nothing in this process knows of it. */
function publishLater(root: string, text: string, delayMs: number) {
  const code = `import { Broker } from ${JSON.stringify(DIST)};
    await new Promise((r) => setTimeout(r, ${delayMs}));
    await (await Broker.open(${JSON.stringify(root)})).publish('q', ${JSON.stringify(text)});`;
  const p = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: 'inherit' });
  return new Promise((resolve) => p.on('close', resolve));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('waiting for messages', () => {
  it('consume({ wait }) takes a message another process publishes meanwhile: change notification, not polling', async () => {
    // The broker's timers never fire: no poll and no deadline can wake the waiting consume,
    // only a change notification can (or the 20 s safety net, which fails the test).
    const frozen = new FakeTime();
    const { root, broker } = await setup({}, { timers: frozen });
    const q = await brokerInternals(broker).queue('q');
    assert.ok(q.watcher().notifying, 'fs.watch works on this file system');
    const safetyNet = new AbortController();
    const net = setTimeout(() => safetyNet.abort(), 20_000);
    const later = publishLater(root, 'hello', 300);
    const got = await broker.consume('q', { wait: 30, signal: safetyNet.signal });
    clearTimeout(net);
    await later;
    assert.deepEqual(got.map((m) => m.text), ['hello'], 'woken by the change notification');
    broker.close();
  });

  it('polls with backoff where notification is missing (as on NFS), and returns [] at the deadline', async () => {
    // As on a network file system, where no event comes from other hosts.
    const { root, broker } = await setup({}, { pollIntervalMs: 200, notify: false });
    assert.equal((await brokerInternals(broker).queue('q')).watcher().notifying, false);
    const later = publishLater(root, 'polled', 300);
    const got = await broker.consume('q', { wait: 30 });
    await later;
    assert.deepEqual(got.map((m) => m.text), ['polled']);
    assert.deepEqual(await broker.consume('q', { wait: 0.3 }), []);
    broker.close();
  });

  it('an abort signal ends a wait with []; bad waits are refused', async () => {
    const { broker } = await setup();
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    assert.deepEqual(await broker.consume('q', { wait: 60, signal: ac.signal }), []);
    for (const wait of [-1, NaN, Infinity, '5']) {
      await assert.rejects(broker.consume('q', { wait: wait as number }), (e) => isDdmqError(e, 'INVALID_ARGUMENT'));
    }
    broker.close();
  });

  it('ddmq consume --wait takes a message published while it waits; exit 3 when none comes', async () => {
    const { root } = await setup();
    const later = publishLater(root, 'for the cli', 500);
    const r = spawnSync(process.execPath, [CLI, 'consume', root, 'q', '--wait', '30'], { encoding: 'utf8' });
    await later;
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).message, 'for the cli');
    const empty = spawnSync(process.execPath, [CLI, 'consume', root, 'q', '-w', '1'], { encoding: 'utf8' });
    assert.equal(empty.status, 3);
  });
});

describe('workers', () => {
  it('run the handler per message within the concurrency limit; success acks, failure nacks', async () => {
    const { broker, root } = await setup({ requeue_prio: 5, retry_delay: 0 });
    for (let i = 0; i < 20; i++) await broker.publish('q', { i, fail: i === 7 });
    let running = 0;
    let most = 0;
    const events: WorkEvent[] = [];
    const seen: number[] = [];
    const worker = work(
      broker,
      'q',
      async (m) => {
        running++;
        most = Math.max(most, running);
        await sleep(10);
        running--;
        const { i, fail } = m.message as { i: number; fail: boolean };
        seen.push(i);
        if (fail && m.requeueCounter === 0) throw new Error('boom');
      },
      { concurrency: 4, idleExit: 0.5, onEvent: (e) => events.push(e) },
    );
    const stats = await worker.done;
    assert.deepEqual([stats.done, stats.failed, stats.released, stats.leaseLost, stats.running], [20, 1, 0, 0, 0]);
    assert.ok(most <= 4 && most > 1, `at most 4 at once (saw ${most})`);
    assert.equal(seen.filter((i) => i === 7).length, 2, 'the failed one came back once');
    const failed = events.find((e) => e.type === 'failed')!;
    assert.equal(failed.action, 'requeued');
    assert.match(String(failed.error), /boom/);
    assert.deepEqual(ls(join(root, 'q', 'work')), []);
    broker.close();
  });

  it('keep a lease alive past message_timeout while the handler runs; a cleaner leaves it alone', async () => {
    const { broker, root } = await setup({ message_timeout: 2, expiry_grace: 0 });
    await broker.publish('q', 'long task');
    const cleaner = await Broker.open(root);
    let cleaning = true;
    const cleans = (async () => {
      let requeued = 0;
      while (cleaning) {
        requeued += (await cleaner.clean('q'))[0]!.requeued;
        await sleep(200);
      }
      return requeued;
    })();
    let calls = 0;
    const stats = await work(
      broker,
      'q',
      async () => {
        calls++;
        await sleep(5000); // 2.5 leases
      },
      { idleExit: 0.5 },
    ).done;
    cleaning = false;
    assert.equal(await cleans, 0, 'the cleaner never took the running message back');
    assert.deepEqual([stats.done, calls], [1, 1]);
    assert.deepEqual((await broker.counts('q'))[0]!.ready + (await broker.counts('q'))[0]!.inFlight, 0);
    broker.close();
  });

  it("a killed worker's message comes back once its lease runs out", async () => {
    const { broker, root } = await setup({ message_timeout: 2, expiry_grace: 0 });
    await broker.publish('q', 'survivor');
    const code = `import { Broker, work } from ${JSON.stringify(DIST)};
      const b = await Broker.open(${JSON.stringify(root)});
      work(b, 'q', async () => { console.log('started'); await new Promise(() => {}); });`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('close', r));
    assert.equal((await broker.counts('q'))[0]!.inFlight, 1);
    let got: Message[] = [];
    for (let i = 0; i < 40 && got.length === 0; i++) {
      await sleep(250);
      await broker.clean('q');
      got = await broker.consume('q', { skipCleaning: true });
    }
    assert.deepEqual(got.map((m) => [m.text, m.requeueCounter]), [['survivor', 1]]);
    broker.close();
  });

  it('stop() takes no more messages, lets handlers finish within the grace, then requeues the rest', async () => {
    const { broker } = await setup();
    await broker.publish('q', 'quick', { priority: 0 });
    await broker.publish('q', 'slow', { priority: 1 });
    await broker.publish('q', 'waiting', { priority: 2 });
    const finished: string[] = [];
    let aborted = false;
    const worker = work(broker, 'q', async (m, { signal }) => {
      if (m.text === 'slow') {
        await new Promise((resolve) => signal.addEventListener('abort', resolve));
        aborted = true;
      }
      finished.push(m.text);
    });
    while (!(finished.includes('quick') && worker.stats.running === 1)) await sleep(20); // "slow" is running
    const stats = await worker.stop(0.3);
    assert.deepEqual([stats.done, stats.released], [1, 1], 'quick was done, slow was released');
    assert.ok(aborted, "the slow handler's signal was aborted");
    const left = await broker.consume('q', { n: 10 });
    assert.deepEqual(left.map((m) => m.text).sort(), ['slow', 'waiting'], 'waiting was never taken');
    broker.close();
  });

  it("after the grace, a message is released only once its handler has returned; abortWait bounds that wait", async () => {
    const { broker } = await setup();
    await broker.publish('q', 'cleans up', { priority: 0, requeue: false });
    await broker.publish('q', 'ignores its signal', { priority: 1 });
    let returned = false;
    const order: string[] = [];
    const worker = work(
      broker,
      'q',
      async (m, { signal }) => {
        if (m.text === 'cleans up') {
          await new Promise((r) => signal.addEventListener('abort', r));
          await sleep(300); // cleaning up after the abort
          returned = true;
          order.push('returned');
          throw new Error('aborted');
        }
        await sleep(60_000);
      },
      {
        concurrency: 2,
        abortWait: 1,
        onEvent: (e) => {
          order.push(`${e.type} ${e.message.text}`);
          if (e.message.text === 'cleans up') assert.ok(returned, 'released after the handler returned');
        },
      },
    );
    while (worker.stats.running < 2) await sleep(10);
    const started = Date.now();
    const stats = await worker.stop(0.1);
    assert.deepEqual([stats.released, stats.failed], [2, 0], 'released, not failed, whatever the handler threw or its requeue setting');
    assert.deepEqual(order, ['returned', 'released cleans up', 'released ignores its signal']);
    assert.ok(Date.now() - started < 3000, 'a handler that ignores its signal is waited for abortWait only');
    assert.deepEqual((await broker.consume('q', { n: 5 })).map((m) => [m.text, m.requeueCounter]), [['cleans up', 0], ['ignores its signal', 0]]);
    broker.close();
  });

  it('maxMessages lets running handlers finish, past the grace', async () => {
    const { broker } = await setup();
    await broker.publish('q', 'slow');
    const stats = await work(broker, 'q', () => sleep(600), { maxMessages: 1, grace: 0.1 }).done;
    assert.deepEqual([stats.done, stats.released], [1, 0]);
    broker.close();
  });

  it('maxMessages, an abort signal, and bad options', async () => {
    const { broker } = await setup();
    for (let i = 0; i < 5; i++) await broker.publish('q', i);
    assert.equal((await work(broker, 'q', () => {}, { maxMessages: 3 }).done).done, 3);
    const ac = new AbortController();
    const w = work(broker, 'q', () => {}, { signal: ac.signal });
    while (w.stats.done < 2) await sleep(10);
    ac.abort();
    assert.equal((await w.done).done, 2);
    for (const bad of [{ concurrency: 0 }, { concurrency: 1.5 }, { lease: -1 }, { lease: 1.5 }, { lease: 0 }, { grace: NaN }, { idleExit: -2 }, { abortWait: -1 }]) {
      assert.throws(() => work(broker, 'q', () => {}, bad), (e) => isDdmqError(e, 'INVALID_ARGUMENT'), JSON.stringify(bad));
    }
    broker.close();
  });
});

describe('the message iterator', () => {
  it('yields messages as they come, waits while empty, and ends at idleExit or abort', async () => {
    const { broker, root } = await setup();
    await broker.publish('q', 'first');
    const later = publishLater(root, 'second', 300);
    const texts: string[] = [];
    for await (const m of messages(broker, 'q', { idleExit: 1.5 })) {
      texts.push(m.text);
      await broker.ack(m);
    }
    await later;
    assert.deepEqual(texts, ['first', 'second']);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    for await (const m of messages(broker, 'q', { signal: ac.signal })) assert.fail(`unexpected ${m.text}`);
    broker.close();
  });
});
