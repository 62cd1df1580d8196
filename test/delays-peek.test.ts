/** Delayed messages, and peeking at messages without taking them. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Broker, isDdmqError } from '../src/index.js';
import { CLI, ls, tempDir } from './helpers.js';

function ddmq(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

async function setup() {
  const root = join(tempDir(), 'root');
  let now = Date.now();
  const clock = { now: () => now, advance: (ms: number) => (now += ms) };
  const broker = await Broker.open(root, { create: true, now: clock.now });
  await broker.createQueue('q');
  return { root, broker, clock };
}

describe('delays', () => {
  it('a delayed message is out of sight (also of the original tool) until it is due, then consumed', async () => {
    const { root, broker, clock } = await setup();
    await broker.publish('q', 'later', { delay: 60 });
    await broker.publish('q', 'now');
    assert.deepEqual((await broker.consume('q', { n: 5 })).map((m) => m.text), ['now']);
    assert.equal((await broker.counts('q'))[0]!.delayed, 1);
    // The original lists only the queue folder itself: nothing of it is there.
    assert.deepEqual(ls(join(root, 'q')).filter((n) => n.includes('.ddmq')), []);
    assert.equal(ls(join(root, 'q', 'delayed')).length, 1);
    clock.advance(30_000);
    assert.deepEqual(await broker.consume('q'), []);
    clock.advance(31_000);
    assert.deepEqual((await broker.consume('q')).map((m) => m.text), ['later']);
    assert.equal((await broker.counts('q'))[0]!.delayed, 0);
  });

  it('survives a restart: a new broker (process) promotes what became due', async () => {
    const { root, broker } = await setup();
    await broker.publish('q', 'after restart', { delay: 5 });
    const later = await Broker.open(root, { now: () => Date.now() + 10_000 });
    assert.deepEqual((await later.consume('q')).map((m) => m.text), ['after restart']);
  });

  it('clean promotes due messages; purge and delete include delayed/; bad delays are refused', async () => {
    const { root, broker, clock } = await setup();
    await broker.publish('q', 'd', { delay: 1 });
    clock.advance(2000);
    await broker.clean('q');
    assert.equal((await broker.counts('q'))[0]!.ready, 1);
    await broker.publish('q', 'e', { delay: 100 });
    assert.deepEqual(await broker.purge('q'), { queue: 'q', ready: 1, delayed: 1, inFlight: 0 }, 'a delayed message is counted as delayed, not ready');
    await broker.publish('q', 'f', { delay: 100 });
    await broker.deleteQueue('q');
    assert.deepEqual(ls(root), ['ddmq.yaml']);
    await broker.createQueue('q');
    for (const delay of [-1, NaN, Infinity, 'x', 1e12]) {
      await assert.rejects(broker.publish('q', 'x', { delay: delay as number }), (e) => isDdmqError(e, 'INVALID_ARGUMENT'), String(delay));
    }
  });

  it('ddmq publish --delay: consume finds nothing until the time has passed', async () => {
    const { root } = await setup();
    assert.equal(ddmq('publish', root, 'q', 'soon', '--delay', '1').code, 0);
    assert.equal(ddmq('consume', root, 'q').code, 3);
    assert.match(ddmq('view', root, '--format', 'plain').out, /^q 0 1 0 0 0$/m);
    await new Promise((r) => setTimeout(r, 2100));
    const r = ddmq('consume', root, 'q');
    assert.equal(r.code, 0);
    assert.equal(JSON.parse(r.out).message, 'soon');
  });
});

describe('peek', () => {
  it('lists ready, in-flight and delayed messages without taking or changing any', async () => {
    const { root, broker } = await setup();
    await broker.publish('q', 'low', { priority: 5 });
    await broker.publish('q', 'high', { priority: 1 });
    await broker.publish('q', 'held');
    await broker.consume('q'); // takes "high"
    await broker.publish('q', 'waiting', { delay: 100 });
    fs.writeFileSync(join(root, 'q', '9.17000000000000000000.ddmq0123456789abcdef0123456789abcdef'), 'not json');
    const before = [ls(join(root, 'q')), ls(join(root, 'q', 'work')), ls(join(root, 'q', 'delayed'))];
    const all = await broker.peek('q');
    assert.deepEqual(all.map((p) => [p.state, p.message?.text ?? null]), [
      ['ready', 'low'],
      ['ready', null],
      ['ready', 'held'],
      ['in-flight', 'high'],
      ['delayed', 'waiting'],
    ]);
    assert.match(all[1]!.error!, /not valid JSON/);
    assert.ok(all[3]!.until! > Date.now() / 1000 && all[4]!.until! > Date.now() / 1000);
    assert.deepEqual([ls(join(root, 'q')), ls(join(root, 'q', 'work')), ls(join(root, 'q', 'delayed'))], before, 'nothing moved');
    assert.deepEqual((await broker.peek('q', { states: ['ready'], limit: 1 })).map((p) => p.message?.text), ['low']);
    assert.deepEqual((await broker.peek('q', { match: 'wait' })).map((p) => p.message?.text), ['waiting']);
  });

  it('ddmq peek: states, -n, --grep, formats; bad states refused', async () => {
    const { root, broker } = await setup();
    for (const t of ['apple', 'banana', 'cherry']) await broker.publish('q', t);
    await broker.consume('q');
    let r = ddmq('peek', root, 'q', '--state', 'ready', '--format', 'json');
    assert.deepEqual(r.out.trim().split('\n').map((l) => JSON.parse(l).message.message), ['banana', 'cherry']);
    r = ddmq('peek', root, 'q', '--grep', 'app');
    assert.match(r.out, /^in-flight +\d+\.999\.\d+\.ddmq\w+ {2}"apple"$/m);
    r = ddmq('peek', root, 'q', '-n', '1');
    assert.equal(r.out.trim().split('\n').length, 1);
    assert.equal(ddmq('peek', root, 'q', '--state', 'gone').code, 2);
  });
});
