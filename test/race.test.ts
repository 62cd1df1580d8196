/**
 * Races between processes: producers and consumers at once, and cleaners racing for
 * the same expired messages. Each claim is one rename to a name unique to the claimer,
 * so every message must be taken exactly once.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Broker } from '../src/index.js';
import { ls, tempDir, worker } from './helpers.js';




function lines(out: string): Record<string, unknown>[] {
  return out
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('races between processes', () => {
  it('4 consumers drain 4,000 messages from 2 concurrent producers: each exactly once', async () => {
    const root = join(tempDir(), 'root');
    const broker = await Broker.open(root, { create: true });
    await broker.createQueue('q');
    const done = join(root, 'producers-done');
    const consumers = [1, 1, 10, 10].map((batch) => worker('consume', root, 'q', done, batch));
    const producers = ['a', 'b'].map((id) => worker('produce', root, 'q', id, 2000));
    for (const p of await Promise.all(producers)) assert.deepEqual([p.code, p.err], [0, '']);
    fs.writeFileSync(done, '');
    const results = await Promise.all(consumers);

    const seen = new Map<string, number>();
    const ids = new Set<string>();
    const perConsumer: number[] = [];
    let lost = 0;
    for (const r of results) {
      assert.deepEqual([r.code, r.err], [0, ''], 'consumer exited cleanly');
      const rows = lines(r.out);
      const tally = rows.pop()!;
      lost += Number(tally.lost);
      perConsumer.push(rows.length);
      for (const row of rows) {
        seen.set(String(row.m), (seen.get(String(row.m)) ?? 0) + 1);
        ids.add(String(row.id));
      }
    }
    const expected = ['a', 'b'].flatMap((p) => Array.from({ length: 2000 }, (_, i) => `${p}:${i}`));
    const missing = expected.filter((m) => !seen.has(m));
    const twice = [...seen].filter(([, n]) => n > 1);
    assert.deepEqual(missing, [], 'no message lost');
    assert.deepEqual(twice, [], 'no message consumed twice');
    assert.equal(seen.size, 4000);
    assert.equal(ids.size, 4000);
    assert.deepEqual(ls(join(root, 'q')), ['ddmq.yaml', 'work']);
    assert.deepEqual(ls(join(root, 'q', 'work')), []);
    console.log(`# per consumer: ${perConsumer.join(', ')}; claims lost to another consumer: ${lost}`);
  });

  it('4 cleaners racing over 2,000 expired messages requeue each exactly once', async () => {
    const root = join(tempDir(), 'root');
    // Consumed "100 seconds ago" with a 1 s lease: past the lease and its 30 s grace now.
    const past = await Broker.open(root, { create: true, now: () => Date.now() - 100_000 });
    await past.createQueue('q');
    const published = new Set<string>();
    for (let i = 0; i < 2000; i++) published.add((await past.publish('q', i)).id);
    assert.equal((await past.consume('q', { n: 2000, lease: 1 })).length, 2000);
    assert.equal(ls(join(root, 'q', 'work')).length, 2000);

    const startAt = Date.now() + 1500;
    const results = await Promise.all([1, 2, 3, 4].map(() => worker('clean', root, 'q', startAt)));
    const requeued: number[] = [];
    for (const r of results) {
      assert.deepEqual([r.code, r.err], [0, ''], 'cleaner exited cleanly');
      const [row] = lines(r.out);
      requeued.push(Number(row!.requeued));
      assert.equal(row!.dropped, 0);
    }
    assert.equal(requeued.reduce((a, b) => a + b, 0), 2000, `requeued per cleaner: ${requeued.join(', ')}`);
    assert.deepEqual(ls(join(root, 'q', 'work')), []);

    const broker = await Broker.open(root);
    const again = await broker.consume('q', { n: 5000, skipCleaning: true });
    assert.equal(again.length, 2000);
    assert.deepEqual(new Set(again.map((m) => m.id)), published, 'the same messages, each once');
    assert.ok(again.every((m) => m.requeueCounter === 1));
    console.log(`# requeued per cleaner: ${requeued.join(', ')}`);
  });
});
