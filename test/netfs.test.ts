/**
 * Many hosts on real network file systems: each rig of ../shared/netfs exports one
 * folder and mounts it twice (A and B), as two hosts would see one NFS export, each
 * with its own cache and no file-change notification between them.
 *
 * The rigs are described by DDMQ_NETFS, a JSON array of
 *   { name, a, b, truth, cacheSeconds }
 * (truth: the server-side folder, only ever read). scripts/with-netfs.sh brings the
 * sshfs and GlusterFS rigs up, sets it, runs a command, and takes them down:
 *   bash scripts/with-netfs.sh npm test
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Broker } from '../src/index.js';
import { worker } from './helpers.js';

interface Rig {
  name: string;
  a: string;
  b: string;
  truth: string;
  /** How long the rig's clients may show a stale listing (sshfs on: ~21 s). */
  cacheSeconds: number;
}

const rigs: Rig[] = process.env.DDMQ_NETFS ? (JSON.parse(process.env.DDMQ_NETFS) as Rig[]) : [];
if (rigs.length === 0 && process.env.CI) throw new Error('CI must run the network file system tests: run them through scripts/with-netfs.sh');


const messageFiles = (dir: string) => fs.readdirSync(dir).filter((n) => n.includes('.ddmq'));

for (const rig of rigs) {
  describe(`on ${rig.name}, mounted twice`, () => {
    // One fresh tree per rig, at the same place under both mounts.
    const top = `ddmq-test-${randomUUID().slice(0, 8)}`;
    const onA = join(rig.a, top);
    const onB = join(rig.b, top);
    const inTruth = join(rig.truth, top);
    fs.mkdirSync(onA);
    after(() => fs.rmSync(onA, { recursive: true, force: true })); // through a mount: never write a brick

    it('producers and consumers split across the two mounts: every message consumed exactly once', async () => {
      const root = 'race';
      const broker = await Broker.open(join(onA, root), { create: true });
      await broker.createQueue('q');
      // All processes run on this machine, so a local file tells the consumers to stop.
      const stopFile = `/tmp/${top}-race-stop`;
      const consumers = [onA, onA, onB, onB].map((m, i) => worker('consume', join(m, root), 'q', `stop:${stopFile}`, i % 2 ? 10 : 1));
      const producers = await Promise.all([onA, onB].map((m, i) => worker('produce', join(m, root), 'q', `p${i}`, 500)));
      for (const p of producers) assert.deepEqual([p.code, p.err], [0, '']);
      // The server's own view decides when all is done; the clients' views may be stale.
      const deadline = Date.now() + 120_000;
      while (messageFiles(join(inTruth, root, 'q')).length + messageFiles(join(inTruth, root, 'q', 'work')).length > 0) {
        assert.ok(Date.now() < deadline, 'the consumers did not drain the queue');
        await new Promise((r) => setTimeout(r, 200));
      }
      fs.writeFileSync(stopFile, '');
      after(() => fs.rmSync(stopFile, { force: true }));
      const seen = new Map<string, number>();
      const perMount = { a: 0, b: 0 };
      let lost = 0;
      for (const [i, r] of (await Promise.all(consumers)).entries()) {
        assert.deepEqual([r.code, r.err], [0, ''], 'consumer exited cleanly');
        const rows = r.out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
        lost += Number(rows.pop()!.lost);
        perMount[i < 2 ? 'a' : 'b'] += rows.length;
        for (const row of rows) seen.set(String(row.m), (seen.get(String(row.m)) ?? 0) + 1);
      }
      const expected = ['p0', 'p1'].flatMap((p) => Array.from({ length: 500 }, (_, i) => `${p}:${i}`));
      assert.deepEqual(expected.filter((m) => !seen.has(m)), [], 'no message lost');
      assert.deepEqual([...seen].filter(([, n]) => n > 1), [], 'no message consumed twice');
      console.log(`# ${rig.name}: consumed through A ${perMount.a}, through B ${perMount.b}; claims lost to a competitor: ${lost}`);
    });

    it('cleaners racing from both mounts requeue each expired message exactly once', async () => {
      const root = join(onA, 'clean');
      const past = await Broker.open(root, { create: true, now: () => Date.now() - 100_000 });
      await past.createQueue('q');
      const ids = new Set<string>();
      for (let i = 0; i < 400; i++) ids.add((await past.publish('q', i)).id);
      assert.equal((await past.consume('q', { n: 400, timeout: 1 })).length, 400);
      const startAt = Date.now() + 2000;
      const results = await Promise.all([onA, onB, onA, onB].map((m) => worker('clean', join(m, 'clean'), 'q', startAt)));
      const requeued = results.map((r) => {
        assert.deepEqual([r.code, r.err], [0, ''], 'cleaner exited cleanly');
        return Number((JSON.parse(r.out) as { requeued: number }).requeued);
      });
      assert.equal(requeued.reduce((x, y) => x + y, 0), 400, `requeued per cleaner: ${requeued.join(', ')}`);
      const again = await (await Broker.open(root)).consume('q', { n: 1000, skipCleaning: true });
      assert.equal(again.length, 400);
      assert.deepEqual(new Set(again.map((m) => m.id)), ids);
      console.log(`# ${rig.name}: requeued per cleaner (A, B, A, B): ${requeued.join(', ')}`);
    });

    it('a message published through A is consumed through B within the documented bound, without notification', async () => {
      const onAroot = join(onA, 'visible');
      const publisher = await Broker.open(onAroot, { create: true });
      await publisher.createQueue('q');
      const consumer = await Broker.open(join(onB, 'visible'));
      assert.deepEqual(await consumer.consume('q'), []); // B has listed the empty queue: its cache is warm
      await publisher.publish('q', 'hello from A');
      const published = Date.now();
      const bound = (rig.cacheSeconds + 1) * 1000 + 3000; // the file system's cache + our listing interval + slack
      let got = null;
      while (got === null) {
        assert.ok(Date.now() - published < bound, `not visible through B after ${bound} ms`);
        await new Promise((r) => setTimeout(r, 100));
        got = await consumer.consumeOne('q', { skipCleaning: true });
      }
      assert.equal(got.text, 'hello from A');
      console.log(`# ${rig.name}: visible through B after ${Date.now() - published} ms (bound ${bound} ms)`);
    });

    it('a consumer waiting through B gets what A publishes: by polling, as no notification crosses mounts', async () => {
      const publisher = await Broker.open(join(onA, 'visible'));
      const consumer = await Broker.open(join(onB, 'visible'), { pollInterval: 500 });
      const waiting = consumer.consume('q', { wait: rig.cacheSeconds + 10, skipCleaning: true });
      await new Promise((r) => setTimeout(r, 300));
      await publisher.publish('q', 'waited for');
      const started = Date.now();
      const got = await waiting;
      assert.deepEqual(got.map((m) => m.text), ['waited for']);
      console.log(`# ${rig.name}: a waiting consumer through B got it after ${Date.now() - started} ms`);
      consumer.close();
    });
  });
}

describe('network file systems', { skip: rigs.length === 0 ? 'no rigs: run through scripts/with-netfs.sh' : false }, () => {
  it('were tested', () => assert.ok(rigs.length > 0));
});
