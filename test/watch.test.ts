/**
 * The folder watcher on a clock the test moves and a fake fs.watch: the polling backoff,
 * the deadline, wakes by notification, and the jitter of the intervals (with the random
 * numbers given, so that every delay asserted here is exact).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FolderWatcher, type WatchFs } from '../src/store/watch.js';
import { FakeTime, settle } from './fake-time.js';

/** A fake fs.watch: `change()` is a change in the folder, `fail()` the watcher failing later. */
function fakeFs() {
  let onChange = () => {};
  let onError: (err: Error) => void = () => {};
  let closed = false;
  const fs: WatchFs = {
    watch: (_dir, _options, listener) => {
      onChange = listener;
      return {
        close: () => void (closed = true),
        on: (_event, listener) => (onError = listener),
      };
    },
  };
  return { fs, change: () => onChange(), fail: () => onError(new Error('folder removed')), closed: () => closed };
}

/** A random number that spreads nothing: each interval is its mean. */
const middle = () => 0.5;

describe('the folder watcher', () => {
  it('spreads each interval by ±20 % with the random numbers given, and grows to pollMax all the same', async () => {
    const time = new FakeTime();
    const draws = [0, 0.999999, 0.25, 0.75, 0, 0.999999, 0.5, 0];
    let i = 0;
    const w = new FolderWatcher('/nowhere', { notify: false, pollMax: 1000, now: time.now, timers: time, random: () => draws[i++ % draws.length]! });
    const far = time.now() + 60_000;
    for (let k = 0; k < 8; k++) {
      const wake = w.wait(far);
      await time.advance(time.delays.at(-1)!);
      assert.equal(await wake, 'poll');
    }
    // 50, 100, ... 800, then 1000 (pollMax): each × (1 + 0.2 × (2r − 1)).
    assert.deepEqual(time.delays, [40, 120, 180, 440, 640, 1200, 1000, 800]);
    // Many consumers started together: their intervals at pollMax are spread over 800–1200 ms, not all 1000.
    const spread = new Set<number>();
    for (let c = 0; c < 50; c++) {
      const t = new FakeTime();
      const cw = new FolderWatcher('/nowhere', { notify: false, pollMin: 1000, pollMax: 1000, now: t.now, timers: t });
      void cw.wait(t.now() + 60_000);
      const d = t.delays[0]!;
      assert.ok(d >= 800 && d <= 1200, `interval ${d} within ±20 % of 1000`);
      spread.add(d);
      cw.close();
    }
    assert.ok(spread.size > 10, `50 consumers drew ${spread.size} different intervals`);
    w.close();
  });

  it('polls at 50 ms, doubling while nothing comes, up to pollMax; reset() starts again at 50 ms', async () => {
    const time = new FakeTime();
    const w = new FolderWatcher('/nowhere', { notify: false, pollMax: 1000, now: time.now, timers: time, random: middle });
    assert.equal(w.notifying, false);
    const far = time.now() + 60_000;
    for (let i = 0; i < 7; i++) {
      const wake = w.wait(far);
      await time.advance(time.delays.at(-1)!);
      assert.equal(await wake, 'poll');
    }
    assert.deepEqual(time.delays, [50, 100, 200, 400, 800, 1000, 1000]);
    w.reset();
    const wake = w.wait(far);
    assert.equal(time.delays.at(-1), 50);
    await time.advance(50);
    assert.equal(await wake, 'poll');
    w.close();
  });

  it("ends with 'timeout' at the deadline when it comes before the next poll", async () => {
    const time = new FakeTime();
    const w = new FolderWatcher('/nowhere', { notify: false, pollMax: 1000, now: time.now, timers: time, random: middle });
    const wake = w.wait(time.now() + 30);
    await time.advance(29);
    let reason: string | undefined;
    void wake.then((r) => (reason = r));
    await settle();
    assert.equal(reason, undefined);
    await time.advance(1);
    assert.equal(await wake, 'timeout');
    assert.equal(await w.wait(time.now()), 'timeout', 'a deadline passed already');
    w.close();
  });

  it("a change wakes a waiter at once ('changed') and restarts the backoff; one with no waiter is kept for the next wait", async () => {
    const time = new FakeTime();
    const f = fakeFs();
    const w = new FolderWatcher('/nowhere', { pollMax: 1000, now: time.now, timers: time, random: middle, fs: f.fs });
    assert.equal(w.notifying, true);
    const far = time.now() + 60_000;
    for (let i = 0; i < 3; i++) {
      const wake = w.wait(far);
      await time.advance(time.delays.at(-1)!);
      await wake;
    }
    const wake = w.wait(far); // would poll in 400 ms
    f.change();
    assert.equal(await wake, 'changed');
    assert.equal(time.timers, 0, 'its poll timer is cleared');
    const next = w.wait(far);
    assert.equal(time.delays.at(-1), 50, 'the backoff started again');
    f.change();
    assert.equal(await next, 'changed');
    f.change(); // nobody waits
    assert.equal(await w.wait(far), 'changed', 'a change while nobody waited');
    assert.equal(time.timers, 0, 'without waiting for a poll');
    w.close();
  });

  it('a watcher that fails later (its folder removed) is closed, and polling goes on', async () => {
    const time = new FakeTime();
    const f = fakeFs();
    const w = new FolderWatcher('/nowhere', { now: time.now, timers: time, random: middle, fs: f.fs });
    f.fail();
    assert.ok(f.closed());
    assert.equal(w.notifying, false);
    const wake = w.wait(time.now() + 60_000);
    await time.advance(50);
    assert.equal(await wake, 'poll');
  });

  it('where fs.watch throws, it polls alone', () => {
    const w = new FolderWatcher('/nowhere', {
      fs: {
        watch: () => {
          throw Object.assign(new Error('ENOSPC: inotify watches used up'), { code: 'ENOSPC' });
        },
      },
    });
    assert.equal(w.notifying, false);
  });
});
