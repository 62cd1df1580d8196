/**
 * The public API, pinned. The type assertions are checked by `npm run typecheck`
 * (test/tsconfig.json): a signature loosened or narrowed by mistake fails there, and each
 * `@ts-expect-error` line fails if what it marks starts to compile. They sit in functions
 * that are never called, since they are about types, not behaviour. What runs under
 * node:test is the list of the main entry's exports, so that an accidental export fails.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { expectTypeOf } from 'expect-type';
import * as ddmq from '../src/index.js';
import { LeaseRenewer, messages, work } from '../src/index.js';
import type {
  Broker,
  Handler,
  HandlerContext,
  MessagesOptions,
  BrokerOptions,
  ConsumeOneOptions,
  ConsumeOptions,
  Message,
  NackResult,
  Peeked,
  PublishOptions,
  PurgeResult,
  QueueCounts,
  QueueEntry,
  RedriveOptions,
  RedriveResult,
  ReleaseResult,
  StatsOptions,
  StatsResult,
  WorkerInfo,
  WorkHandle,
  WorkOptions,
} from '../src/index.js';

interface Task {
  file: string;
  pages: number;
}

/** Overloads: a message, or a queue and a file name; nothing in between. */
export async function settling(broker: Broker, msg: Message<Task>): Promise<void> {
  expectTypeOf(broker.ack(msg)).toEqualTypeOf<Promise<void>>();
  expectTypeOf(broker.ack('q', 'name', { exitCode: 0 })).toEqualTypeOf<Promise<void>>();
  expectTypeOf(broker.nack(msg, { error: 'boom' })).toEqualTypeOf<Promise<NackResult>>();
  expectTypeOf(broker.nack('q', 'name')).toEqualTypeOf<Promise<NackResult>>();
  expectTypeOf(broker.release(msg)).toEqualTypeOf<Promise<ReleaseResult>>();
  expectTypeOf(broker.extend(msg, 60)).toEqualTypeOf<Promise<string>>();
  expectTypeOf(broker.extend('q', 'name', 60)).toEqualTypeOf<Promise<string>>();

  // @ts-expect-error: the seconds are a number
  await broker.extend(msg, 'x');
  // @ts-expect-error: a queue name needs a file name
  await broker.extend('q', 60);
  // @ts-expect-error: a queue name needs a file name
  await broker.ack('q');
  // @ts-expect-error: a message takes no file name
  await broker.ack(msg, 'name');
  // @ts-expect-error: a queue name needs a file name
  await broker.nack('q', { requeue: true });
  // @ts-expect-error: a queue name needs a file name
  await broker.release('q');
}

/** Message<T>: the caller's payload type flows through publish, consume, consumeOne and peek. */
export async function payloads(broker: Broker): Promise<void> {
  const sent = await broker.publish('q', { file: 'a.pdf', pages: 3 });
  expectTypeOf(sent).toEqualTypeOf<Message<{ file: string; pages: number }>>();
  const [m] = await broker.consume<Task>('q', { n: 10 });
  expectTypeOf(m!.message).toEqualTypeOf<Task>();
  expectTypeOf((await broker.consumeOne<Task>('q'))!.message).toEqualTypeOf<Task>();
  expectTypeOf((await broker.peek<Task>('q'))[0]!.message).toEqualTypeOf<Message<Task> | null>();
  // Without a type argument the payload is unknown, not any.
  expectTypeOf((await broker.consume('q'))[0]!.message).toEqualTypeOf<unknown>();
  expectTypeOf(m!.lease).toEqualTypeOf<number | null>();
  // A typed message is accepted wherever a message is.
  expectTypeOf<Message<Task>>().toExtend<Message>();
  // @ts-expect-error: consumeOne takes one message
  await broker.consumeOne('q', { n: 2 });
}

/** work<T> and messages<T>: the handler's and the loop's messages carry the payload type. */
export async function workers(broker: Broker): Promise<void> {
  const handle = work<Task>(broker, 'q', async (msg, context) => {
    expectTypeOf(msg).toEqualTypeOf<Message<Task>>();
    expectTypeOf(msg.message.pages).toEqualTypeOf<number>();
    expectTypeOf(context).toEqualTypeOf<HandlerContext>();
  });
  expectTypeOf(handle).toEqualTypeOf<WorkHandle>();
  expectTypeOf<Parameters<Handler<Task>>[0]>().toEqualTypeOf<Message<Task>>();
  // A handler written for one payload type is not taken for another.
  const forTasks: Handler<Task> = async () => {};
  // @ts-expect-error: a Handler<Task> is not a Handler<string>
  work<string>(broker, 'q', forTasks);
  for await (const msg of messages<Task>(broker, 'q', { idleExit: 5 })) expectTypeOf(msg.message).toEqualTypeOf<Task>();
  expectTypeOf(messages).parameter(2).toEqualTypeOf<MessagesOptions | undefined>();
  expectTypeOf<WorkOptions['lease']>().toEqualTypeOf<number | undefined>();
  expectTypeOf<MessagesOptions['lease']>().toEqualTypeOf<number | undefined>();
  // @ts-expect-error: the seconds are a number
  new LeaseRenewer(broker).hold((await broker.consume('q'))[0]!, '60');
}

/** One word per concept (lease), and units in the names of the broker's durations. */
export async function optionsAndUnits(broker: Broker): Promise<void> {
  expectTypeOf<PublishOptions['lease']>().toEqualTypeOf<number | null | undefined>();
  expectTypeOf<ConsumeOptions['lease']>().toEqualTypeOf<number | undefined>();
  expectTypeOf<ConsumeOneOptions>().not.toHaveProperty('n');
  expectTypeOf<BrokerOptions>().toHaveProperty('listingIntervalMs');
  expectTypeOf<BrokerOptions>().toHaveProperty('cleanIntervalMs');
  expectTypeOf<BrokerOptions>().toHaveProperty('pollIntervalMs');
  expectTypeOf<BrokerOptions>().toHaveProperty('settingsTtlMs');
  expectTypeOf<BrokerOptions>().not.toHaveProperty('pollInterval');
  // @ts-expect-error: the lease is called lease
  await broker.publish('q', 'x', { timeout: 60 });
  // @ts-expect-error: the lease is called lease
  await broker.consume('q', { timeout: 60 });
  // @ts-expect-error: milliseconds say so in the name
  await ddmq.Broker.open('/r', { pollInterval: 500 });
  // @ts-expect-error: milliseconds say so in the name
  await ddmq.Broker.open('/r', { settingsTtl: 0 });
}

/** Every method's options and results have a name of their own. */
export async function namedResults(broker: Broker): Promise<void> {
  expectTypeOf(broker.redrive).parameter(1).toEqualTypeOf<RedriveOptions | undefined>();
  expectTypeOf(broker.redrive('dead')).toEqualTypeOf<Promise<RedriveResult>>();
  expectTypeOf(broker.purge('q')).toEqualTypeOf<Promise<PurgeResult>>();
  expectTypeOf(broker.counts()).toEqualTypeOf<Promise<QueueCounts[]>>();
  expectTypeOf(broker.stats('q', { since: 0 })).toEqualTypeOf<Promise<StatsResult>>();
  expectTypeOf(broker.stats).parameter(1).toEqualTypeOf<StatsOptions | undefined>();
  expectTypeOf(broker.workers()).toEqualTypeOf<Promise<WorkerInfo[]>>();
  expectTypeOf(broker.queueProblems()).toEqualTypeOf<Promise<QueueEntry[]>>();
  expectTypeOf<Peeked>().toHaveProperty('state');
}

describe('the public API', () => {
  it('the main entry exports exactly these values (types are pinned by typecheck)', () => {
    assert.deepEqual(Object.keys(ddmq).sort(), [
      'Broker',
      'DEFAULT_SETTINGS',
      'DdmqError',
      'LeaseRenewer',
      'TaskInterrupted',
      'VERSION',
      'isDdmqError',
      'messages',
      'work',
    ]);
  });
});
