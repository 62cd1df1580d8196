/** Dead letters: messages past their requeue limit, with their history, and redrive. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Broker, isDdmqError, work } from '../src/index.js';
import { parseReadyName } from '../src/internals.js';
import { CLI, ls, tempDir } from './helpers.js';

async function setup() {
  const root = join(tempDir(), 'root');
  let now = Date.now();
  const broker = await Broker.open(root, { create: true, now: () => now });
  await broker.createQueue('q', { dead_letter: 'q-dead', expiry_grace: 0, retry_delay: 0 });
  return { root, broker, advance: (ms: number) => (now += ms) };
}

/** Publishes `texts` with a limit of 0 and nacks them into q-dead; returns their ids, from the file names. */
async function deadLetters(broker: Broker, root: string, texts: string[]): Promise<string[]> {
  for (const t of texts) await broker.publish('q', t, { requeueLimit: 0 });
  for (const m of await broker.consume('q', { n: texts.length })) await broker.nack(m);
  // The ids are in the file names; nothing needs to be taken to find them.
  const ids = ls(join(root, 'q-dead')).map((n) => parseReadyName(n)?.id).filter((id): id is string => id !== undefined);
  assert.equal(ids.length, texts.length);
  return ids;
}

async function leftIn(broker: Broker, queue: string): Promise<number> {
  const [c] = await broker.counts(queue);
  return c!.ready + c!.delayed + c!.inFlight;
}

describe('dead letters', () => {
  it('nack of a message past its requeue limit moves it to the dead-letter queue, the same message by id, with its history', async () => {
    const { broker } = await setup();
    await broker.publish('q', 'nacked', { requeueLimit: 0 });
    const [m] = await broker.consume('q');
    assert.equal((await broker.nack(m!, { error: 'it broke' })).action, 'dead-lettered');
    assert.equal(await leftIn(broker, 'q'), 0);
    const dead = await broker.consume('q-dead', { n: 10 });
    assert.deepEqual(dead.map((d) => d.text), ['nacked']);
    const history = dead[0]!.extra.dead_letter as Record<string, unknown>;
    // A limit of 0 is written as requeue: false, which the original tool reads the same way.
    assert.deepEqual([history.from, history.reason, history.requeue_counter, history.last_error], ['q', 'requeue is off', 0, 'it broke']);
    assert.equal(dead[0]!.id, m!.id);
  });

  it('clean of an expired message past its requeue limit moves it to the dead-letter queue', async () => {
    const { broker, advance } = await setup();
    const published = await broker.publish('q', 'expired', { requeueLimit: 0, lease: 1 });
    await broker.consume('q');
    advance(5000);
    assert.equal((await broker.clean('q'))[0]!.deadLettered, 1);
    assert.equal(await leftIn(broker, 'q'), 0);
    const dead = await broker.consume('q-dead', { n: 10 });
    assert.deepEqual(dead.map((d) => [d.text, d.id]), [['expired', published.id]]);
    assert.equal((dead[0]!.extra.dead_letter as Record<string, unknown>).from, 'q');
  });

  it("a worker's failures carry the handler's error into the dead letter", async () => {
    const { broker } = await setup();
    await broker.publish('q', 'doomed', { requeueLimit: 1 });
    const stats = await work(broker, 'q', () => { throw new Error('disk on fire'); }, { idleExit: 0.5 }).done;
    assert.equal(stats.failed, 2);
    const [d] = await broker.consume('q-dead');
    assert.equal((d!.extra.dead_letter as Record<string, unknown>).last_error, 'disk on fire');
    broker.close();
  });

  it('redrive by id moves only that one back, its counter reset and its dead-letter history removed', async () => {
    const { broker, root } = await setup();
    const ids = await deadLetters(broker, root, ['a', 'b', 'c']);
    const fresh = await Broker.open(root);
    assert.deepEqual(await fresh.redrive('q-dead', { ids: [ids[1]!] }), { moved: 1, skipped: 0, missing: [] });
    const back = await fresh.consume('q', { n: 10 });
    assert.deepEqual(back.map((b) => [b.id, b.requeueCounter, 'dead_letter' in b.extra]), [[ids[1], 0, false]]);
    assert.equal(await leftIn(fresh, 'q-dead'), 2);
  });

  it('ddmq redrive --to -f moves every dead letter into another queue, made for them', async () => {
    const { broker, root } = await setup();
    await deadLetters(broker, root, ['a', 'b']);
    const r = spawnSync(process.execPath, [CLI, 'redrive', root, 'q-dead', '--to', 'elsewhere', '-f', '--format', 'json'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { queue: 'q-dead', moved: 2, skipped: 0, missing: [] });
    const fresh = await Broker.open(root);
    assert.equal((await fresh.counts('elsewhere'))[0]!.ready, 2);
    assert.equal(await leftIn(fresh, 'q-dead'), 0);
  });

  it('a dead_letter setting that is not a queue name is refused', async () => {
    const { broker } = await setup();
    await assert.rejects(broker.setSettings('q', { dead_letter: '../x' }), (e) => isDdmqError(e, 'INVALID_SETTING'));
  });

  it('without a dead_letter setting, a message past its requeue limit is dropped', async () => {
    const { broker, root } = await setup();
    await broker.setSettings('q', { dead_letter: null });
    await broker.publish('q', 'gone', { requeueLimit: 0 });
    const [g] = await broker.consume('q', { n: 5 });
    assert.equal((await broker.nack(g!)).action, 'dropped');
    assert.equal(await leftIn(broker, 'q'), 0);
    assert.deepEqual(ls(root).includes('q-dead') ? ls(join(root, 'q-dead')).filter((n) => n.includes('.ddmq')) : [], []);
  });
});
