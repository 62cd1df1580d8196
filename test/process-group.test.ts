/**
 * Finding a task's processes (src/worker/process-group.ts): only the pids made since its
 * leader are read, as long as the pids cannot have gone round a whole cycle since; past
 * that, the whole of /proc. (A real wrap takes tens of thousands of forks: too slow for a
 * test, so the fork count before the task is set back instead.)
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { describe, it } from 'node:test';
import { forkCount, pidsSince, signalTask, type Task, taskAlive, waitTaskGone } from '../src/worker/process-group.js';

const linux = process.platform === 'linux';

/** Whether a process runs (a zombie, which no init may have reaped yet, does not). */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) [ZX]/s.test(fs.readFileSync(`/proc/${pid}/stat`, 'latin1'));
  } catch {
    return false;
  }
}

/** A session of its own whose leader has a child in another process group; resolves with both pids. */
async function session(): Promise<{ task: Task; child: number }> {
  const forksBefore = forkCount();
  const p = spawn('sh', ['-c', 'set -m; sleep 300 & echo $!; wait'], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
  const child = await new Promise<number>((resolve) => p.stdout.once('data', (d) => resolve(Number(String(d).trim()))));
  return { task: { sid: p.pid!, forksBefore }, child };
}

describe('the processes of a task', { skip: !linux && 'needs /proc' }, () => {
  it('the kernel count of forks grows with each process made', async () => {
    const before = forkCount()!;
    const { task } = await session();
    assert.ok(forkCount()! >= before + 2);
    signalTask(task, 'SIGKILL');
    assert.equal(await waitTaskGone(task), true);
  });

  it('a young task is looked for among the pids made since its leader; one that may have seen a whole cycle of pids, everywhere', async () => {
    const { task, child } = await session();
    try {
      const window = pidsSince(task);
      assert.ok(window !== null && window.has(task.sid) && window.has(child));
      const max = Number(fs.readFileSync('/proc/sys/kernel/pid_max', 'latin1'));
      const old: Task = { ...task, forksBefore: task.forksBefore! - Math.ceil(max / 2) };
      assert.equal(pidsSince(old), null, 'past half a cycle: every pid counts');
      assert.equal(taskAlive(old), true);
      assert.equal(pidsSince({ ...task, forksBefore: null }), null, 'no count known: every pid counts');
    } finally {
      signalTask(task, 'SIGKILL');
      assert.equal(await waitTaskGone(task), true);
    }
    assert.equal(running(child), false, 'the child in a group of its own ended too');
  });
});
