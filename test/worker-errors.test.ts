/**
 * Store errors inside a worker (issue 8, finding 5): a failing ack, nack, release or
 * consume ends the worker cleanly. It takes no more messages, stops running handlers,
 * releases their messages where it can, and rejects `done` with the DdmqError; nothing
 * is left as an unhandled rejection. `ddmq work` prints `ddmq: error: ...` and exits 2/4.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Broker, DdmqError, isDdmqError, type WorkEvent, work } from '../src/index.js';
import { CLI, sleep, tempDir } from './helpers.js';


const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => void unhandled.push(reason);
before(() => process.on('unhandledRejection', onUnhandled));
after(() => process.off('unhandledRejection', onUnhandled));

async function setup(texts: string[]) {
  const root = join(tempDir(), 'root');
  const broker = await Broker.open(root, { create: true });
  await broker.createQueue('q', { retry_delay: 0 });
  for (const t of texts) await broker.publish('q', t);
  return { root, broker };
}

/** Resolves with what `done` rejected with; fails if it resolves, or does neither within 10 s. */
async function rejection(done: Promise<unknown>): Promise<unknown> {
  const outcome = await Promise.race([
    done.then(
      () => ({ resolved: true }),
      (error: unknown) => ({ error }),
    ),
    new Promise((resolve) => setTimeout(resolve, 10_000).unref()).then(() => ({ hung: true })),
  ]);
  assert.ok('error' in outcome, `done should reject (${JSON.stringify(outcome)})`);
  return outcome.error;
}

describe('store errors in a worker', () => {
  it('a nack that fails (read-only disk) ends the worker: the other running handler is stopped and released; done rejects with the IO error', async () => {
    const { broker } = await setup(['fails', 'long', 'never taken']);
    broker.nack = (() => Promise.reject(new DdmqError('IO', 'cannot write: read-only file system (EROFS)', { osCode: 'EROFS' }))) as Broker['nack'];
    const events: WorkEvent[] = [];
    let longAborted = false;
    const worker = work(
      broker,
      'q',
      async (m, { signal }) => {
        if (m.text === 'fails') {
          await sleep(100);
          throw new Error('task failed');
        }
        await sleep(30_000, signal);
        longAborted = signal.aborted;
      },
      { concurrency: 2, onEvent: (e) => events.push(e) },
    );
    const error = await rejection(worker.done);
    assert.ok(isDdmqError(error, 'IO') && error.osCode === 'EROFS', String(error));
    assert.match((error as Error).message, /worker on queue q stopped: .*EROFS/);
    assert.ok(longAborted, 'the running handler was stopped');
    assert.deepEqual(events.map((e) => [e.type, e.message.text]).sort(), [['error', 'fails'], ['released', 'long']]);
    const left = await broker.consume('q', { n: 5 });
    assert.deepEqual(left.map((m) => m.text).sort(), ['long', 'never taken']);
    assert.deepEqual(unhandled, []);
    broker.close();
  });

  it('an ack that fails ends the worker the same way', async () => {
    const { broker } = await setup(['a']);
    broker.ack = (() => Promise.reject(new DdmqError('IO', 'cannot remove: input/output error (EIO)', { osCode: 'EIO' }))) as Broker['ack'];
    const error = await rejection(work(broker, 'q', () => {}).done);
    assert.ok(isDdmqError(error, 'IO') && error.osCode === 'EIO');
    assert.deepEqual(unhandled, []);
    broker.close();
  });

  it('a consume that fails ends the worker: the running handler is stopped and released', async () => {
    const { broker } = await setup(['running', 'next']);
    const consume = broker.consume.bind(broker);
    let calls = 0;
    broker.consume = ((...args: Parameters<Broker['consume']>) => {
      if (++calls >= 2) return Promise.reject(new DdmqError('QUEUE_MISSING', 'queue q does not exist'));
      return consume(...args);
    }) as Broker['consume'];
    let aborted = false;
    const worker = work(broker, 'q', async (_m, { signal }) => {
      await sleep(30_000, signal);
      aborted = signal.aborted;
    }, { concurrency: 2 });
    const error = await rejection(worker.done);
    assert.ok(isDdmqError(error, 'QUEUE_MISSING'));
    assert.ok(aborted);
    assert.equal(worker.stats.released, 1);
    broker.consume = consume;
    assert.deepEqual((await broker.consume('q', { n: 5 })).map((m) => m.text).sort(), ['next', 'running']);
    assert.deepEqual(unhandled, []);
    broker.close();
  });

  it('a release that fails at stop is reported, and done rejects', async () => {
    const { broker } = await setup(['a']);
    broker.release = (() => Promise.reject(new DdmqError('IO', 'cannot write: no space left on device (ENOSPC)', { osCode: 'ENOSPC' }))) as Broker['release'];
    const events: WorkEvent[] = [];
    const worker = work(broker, 'q', (_m, { signal }) => sleep(30_000, signal), { onEvent: (e) => events.push(e) });
    while (worker.stats.running === 0) await sleep(10);
    const error = await rejection(worker.stop(0));
    assert.ok(isDdmqError(error, 'IO') && error.osCode === 'ENOSPC');
    assert.deepEqual(events.map((e) => e.type), ['error']);
    assert.deepEqual(unhandled, []);
    broker.close();
  });

  it('ddmq work: the queue deleted under a running task: "ddmq: error: ...", exit 2, no stack trace', async () => {
    const { root, broker } = await setup(['a']);
    const dir = join(root, '..');
    const child = spawn(process.execPath, [CLI, 'work', root, 'q', '--', 'sh', '-c', `touch ${dir}/started; sleep 1`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (d) => (err += d));
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
    while (!fs.existsSync(join(dir, 'started'))) await sleep(20);
    await broker.deleteQueue('q');
    const code = await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 15_000).unref()).then(() => 'hung')]);
    if (code === 'hung') child.kill('SIGKILL');
    assert.equal(code, 2, err);
    assert.match(err, /^ddmq: error: worker on queue q stopped: queue q does not exist/m);
    assert.doesNotMatch(err, /\n\s+at |nhandled|internal error/);
  });
});
