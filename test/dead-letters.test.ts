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

describe('dead letters', () => {
  it('a message past its requeue limit goes to the dead-letter queue with its history, from nack and from clean', async () => {
    const { broker, advance } = await setup();
    await broker.publish('q', 'nacked', { requeueLimit: 0 });
    const [m] = await broker.consume('q');
    assert.deepEqual(await broker.nack(m!, { error: 'it broke' }).then((r) => r.action), 'dead-lettered');
    await broker.publish('q', 'expired', { requeueLimit: 0, timeout: 1 });
    await broker.consume('q');
    advance(5000);
    assert.equal((await broker.clean('q'))[0]!.deadLettered, 1);
    const dead = await broker.consume('q-dead', { n: 10 });
    assert.deepEqual(dead.map((d) => d.text).sort(), ['expired', 'nacked']);
    const nacked = dead.find((d) => d.text === 'nacked')!;
    const history = nacked.extra.dead_letter as Record<string, unknown>;
    // A limit of 0 is written as requeue: false, which the original tool reads the same way.
    assert.deepEqual([history.from, history.reason, history.requeue_counter, history.last_error], ['q', 'requeue is off', 0, 'it broke']);
    assert.equal(nacked.id, m!.id, 'the same message, by id');
    assert.deepEqual((await broker.counts('q'))[0]!.ready + (await broker.counts('q'))[0]!.inFlight, 0);
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

  it('redrive moves them back, all or by id, counters reset; without a dead_letter setting they are dropped', async () => {
    const { broker, root } = await setup();
    for (const t of ['a', 'b', 'c']) await broker.publish('q', t, { requeueLimit: 0 });
    for (const m of await broker.consume('q', { n: 3 })) await broker.nack(m);
    // The ids are in the file names; nothing needs to be taken to find them.
    const ids = ls(join(root, 'q-dead')).map((n) => parseReadyName(n)?.id).filter((id): id is string => id !== undefined);
    assert.equal(ids.length, 3);
    const fresh = await Broker.open(root);
    assert.deepEqual(await fresh.redrive('q-dead', { ids: [ids[1]!] }), { moved: 1, skipped: 0, missing: [] });
    const back = await fresh.consume('q');
    assert.deepEqual([back[0]!.id, back[0]!.requeueCounter, 'dead_letter' in back[0]!.extra], [ids[1], 0, false]);
    const r = spawnSync(process.execPath, [CLI, 'redrive', root, 'q-dead', '--to', 'elsewhere', '-f', '--format', 'json'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { queue: 'q-dead', moved: 2, skipped: 0, missing: [] });
    assert.equal((await fresh.counts('elsewhere'))[0]!.ready, 2);
    await assert.rejects(fresh.setSettings('q', { dead_letter: '../x' }), (e) => isDdmqError(e, 'INVALID_SETTING'));
    await fresh.setSettings('q', { dead_letter: null });
    await fresh.publish('q', 'gone', { requeueLimit: 0 });
    const [g] = await fresh.consume('q', { n: 5 });
    assert.equal((await fresh.nack(g!)).action, 'dropped');
  });
});
