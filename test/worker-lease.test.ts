/**
 * Leases of running handlers (issue 8, finding 4): renewed every third of the lease;
 * transient renewal errors are retried and reported; a lost lease is reported once, the
 * handler's signal aborted, and the message neither acked nor nacked.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Broker, DdmqError, type Message, work, type WorkEvent } from '../src/index.js';
import { sleep, tempDir } from './helpers.js';


async function setup(settings: Record<string, unknown> = {}) {
  const root = join(tempDir(), 'root');
  const broker = await Broker.open(root, { create: true });
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
  it('a 1 s lease is renewed every third of a second', async () => {
    const { broker } = await setup();
    await broker.publish('q', 'a');
    let renewals = 0;
    const extend = broker.extend.bind(broker);
    broker.extend = ((...args: Parameters<Broker['extend']>) => {
      renewals++;
      return extend(...args);
    }) as Broker['extend'];
    const stats = await work(broker, 'q', () => sleep(1200), { lease: 1, maxMessages: 1 }).done;
    assert.equal(stats.done, 1);
    assert.ok(renewals >= 3 && renewals <= 4, `renewed ${renewals} times in 1.2 s`);
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
    const { broker } = await setup();
    await broker.publish('q', 'a');
    broker.extend = (() => Promise.reject(new DdmqError('IO', 'rename failed: permission denied (EACCES)', { osCode: 'EACCES' }))) as Broker['extend'];
    const events: WorkEvent[] = [];
    let aborted = false;
    const started = Date.now();
    const stats = await work(
      broker,
      'q',
      async (_m, { signal }) => {
        await sleep(10_000, signal);
        aborted = signal.aborted;
      },
      { lease: 1, maxMessages: 1, onEvent: (e) => events.push(e) },
    ).done;
    assert.ok(aborted);
    const took = Date.now() - started;
    assert.ok(took >= 1000 && took < 3000, `lost when the lease ran out, 1 to 2 s after it was taken (${took} ms)`);
    assert.deepEqual(events.map((e) => e.type), ['warning', 'lease-lost']);
    assert.match(String((events[1]!.error as Error).message), /ran out: it could not be renewed .*EACCES/);
    assert.equal(stats.leaseLost, 1);
    broker.close();
  });
});
