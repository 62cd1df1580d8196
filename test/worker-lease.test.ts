/**
 * Leases of running handlers (issue 8, finding 4): renewed every third of the lease;
 * transient renewal errors are retried and reported; a lost lease is reported once, the
 * handler's signal aborted, and the message neither acked nor nacked. The timing tests run
 * on a clock the test moves (the broker's `now`, the worker's `timers`): their times are exact.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Broker, type BrokerOptions, DdmqError, type Message, work, type WorkEvent } from '../src/index.js';
import { FakeTime, settle } from './fake-time.js';
import { sleep, tempDir } from './helpers.js';


async function setup(settings: Record<string, unknown> = {}, options: BrokerOptions = {}) {
  const root = join(tempDir(), 'root');
  const broker = await Broker.open(root, { create: true, ...options });
  await broker.createQueue('q', { expiry_grace: 0, ...settings });
  return { root, broker };
}

/** Cleans the queue every 50 ms from another broker (another host) until stopped; counts what it requeued. */
function busyCleaner(root: string) {
  let on = true;
  const done = (async () => {
    const other = await Broker.open(root);
    let requeued = 0;
    while (on) {
      requeued += (await other.clean('q'))[0]!.requeued;
      await sleep(50);
    }
    return requeued;
  })();
  return {
    stop: async () => {
      on = false;
      return done;
    },
  };
}

describe('worker leases', () => {
  it('a 1 s lease is renewed every third of a second, on the timers it is given', async () => {
    const time = new FakeTime();
    const { broker } = await setup({}, { now: time.now });
    await broker.publish('q', 'a');
    const renewals: number[] = [];
    const extend = broker.extend.bind(broker);
    broker.extend = ((...args: Parameters<Broker['extend']>) => {
      renewals.push(Math.round(time.now() - start));
      return extend(...args);
    }) as Broker['extend'];
    let finish = () => {};
    const start = time.now();
    const worker = work(broker, 'q', () => new Promise<void>((resolve) => (finish = resolve)), { lease: 1, maxMessages: 1, timers: time });
    while (worker.stats.running === 0) await settle();
    await time.advance(1200);
    finish();
    const stats = await worker.done;
    assert.equal(stats.done, 1);
    assert.deepEqual(renewals, [333, 667, 1000]);
    assert.equal(time.timers, 0, 'no timer left behind');
    broker.close();
  });

  it('a lost lease: exactly one lease-lost event, the signal aborted, stats.leaseLost 1, no ack or nack', async () => {
    const { root, broker } = await setup();
    await broker.publish('q', 'a');
    const events: WorkEvent[] = [];
    let signal: AbortSignal | undefined;
    let stolen: Message | undefined;
    const worker = work(
      broker,
      'q',
      async (_m, ctx) => {
        signal = ctx.signal;
        // Another client, whose clock is a minute ahead, cleans the message and takes it.
        const other = await Broker.open(root, { now: () => Date.now() + 60_000 });
        assert.equal((await other.clean('q'))[0]!.requeued, 1);
        [stolen] = await other.consume('q', { lease: 600, skipCleaning: true });
        await sleep(3500, ctx.signal);
      },
      { lease: 1, maxMessages: 1, onEvent: (e) => events.push(e) },
    );
    const stats = await worker.done;
    assert.deepEqual(events.map((e) => e.type), ['lease-lost']);
    assert.ok(signal?.aborted, "the handler's signal was aborted");
    assert.deepEqual([stats.leaseLost, stats.done, stats.failed, stats.released], [1, 0, 0, 0]);
    assert.equal(stolen?.text, 'a');
    await broker.ack(stolen!); // the thief's claim is intact: nothing acked or nacked it
    const [c] = await broker.counts('q');
    assert.deepEqual([c!.ready, c!.inFlight, c!.delayed], [0, 0, 0]);
    broker.close();
  });

  it('transient renewal errors (ESTALE) are retried at once and reported, and the lease is kept', async () => {
    const { root, broker } = await setup();
    await broker.publish('q', 'a');
    let calls = 0;
    const extend = broker.extend.bind(broker);
    broker.extend = ((...args: Parameters<Broker['extend']>) => {
      calls++;
      if (calls <= 3) return Promise.reject(new DdmqError('IO', 'rename failed: stale file handle (ESTALE)', { osCode: 'ESTALE' }));
      return extend(...args);
    }) as Broker['extend'];
    const cleaner = busyCleaner(root);
    const events: WorkEvent[] = [];
    const stats = await work(broker, 'q', () => sleep(2500), { lease: 1, maxMessages: 1, onEvent: (e) => events.push(e) }).done;
    assert.equal(await cleaner.stop(), 0, 'the lease never ran out');
    assert.deepEqual([stats.done, stats.leaseLost], [1, 0]);
    assert.deepEqual(events.map((e) => e.type), ['warning', 'done'], 'the failed renewals were reported once');
    assert.match(String((events[0]!.error as Error).message), /renewing the lease .* failed .*ESTALE.*trying again/);
    broker.close();
  });

  it('renewals that keep failing: the lease is lost once it runs out, not before; the handler is told', async () => {
    const time = new FakeTime();
    const { broker } = await setup({}, { now: time.now });
    await broker.publish('q', 'a');
    broker.extend = (() => Promise.reject(new DdmqError('IO', 'rename failed: permission denied (EACCES)', { osCode: 'EACCES' }))) as Broker['extend'];
    const events: WorkEvent[] = [];
    let abortedAt: number | undefined;
    const start = time.now();
    const worker = work(
      broker,
      'q',
      (_m, { signal }) => new Promise<void>((resolve) => signal.addEventListener('abort', () => {
        abortedAt = time.now() - start;
        resolve();
      })),
      { lease: 1, maxMessages: 1, timers: time, onEvent: (e) => events.push(e) },
    );
    while (worker.stats.running === 0) await settle();
    await time.advance(1999);
    assert.equal(abortedAt, undefined, 'not lost before the lease ran out');
    await time.advance(1);
    const stats = await worker.done;
    // Taken on a whole second with a 1 s lease: its name expires at the end of the next one.
    assert.equal(abortedAt, 2000, 'lost when the lease ran out');
    assert.deepEqual(events.map((e) => e.type), ['warning', 'lease-lost']);
    assert.equal(Math.round(events[0]!.ms), 333);
    assert.equal(events[1]!.ms, 2000);
    assert.match(String((events[1]!.error as Error).message), /ran out: it could not be renewed .*EACCES/);
    assert.equal(stats.leaseLost, 1);
    broker.close();
  });
});
