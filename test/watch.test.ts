/**
 * The folder watcher on a clock the test moves and a fake fs.watch: the polling backoff,
 * the deadline, and wakes by notification. Every delay asserted here is exact.
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

describe('the folder watcher', () => {
  it('polls at 50 ms, doubling while nothing comes, up to pollMax; reset() starts again at 50 ms', async () => {
    const time = new FakeTime();
    const w = new FolderWatcher('/nowhere', { notify: false, pollMax: 1000, now: time.now, timers: time });
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
    const w = new FolderWatcher('/nowhere', { notify: false, pollMax: 1000, now: time.now, timers: time });
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
    const w = new FolderWatcher('/nowhere', { pollMax: 1000, now: time.now, timers: time, fs: f.fs });
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
    const w = new FolderWatcher('/nowhere', { now: time.now, timers: time, fs: f.fs });
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
