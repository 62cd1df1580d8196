/**
 * The processes of a task: a task is started as the leader of a session (and process
 * group) of its own, so that its whole tree can be signalled, and waited for, as one.
 *
 * The process group is not enough: a task may put some of its processes in groups of
 * their own (coreutils `timeout` does, and so does a shell with job control, `set -m`).
 * They stay in the task's session, which only `setsid` leaves. So on Linux the task is
 * every process of its session, found through /proc; elsewhere, its process group.
 * Nothing here starts processes; the command line's task runner does.
 */
import * as fs from 'node:fs';

/** Sends a signal to every process of the task (session `sid`); false if none is left. */
export function signalTask(sid: number, signal: NodeJS.Signals): boolean {
  let any = false;
  try {
    process.kill(-sid, signal);
    any = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
  for (const pid of sessionMembers(sid)) {
    try {
      process.kill(pid, signal);
      any = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err; // gone meanwhile
    }
  }
  return any;
}

/**
 * Whether any process of the task is still alive. Zombies do not count: a process that
 * has exited but was not yet reaped (by an init that does not reap, as in some
 * containers) runs no code and holds nothing but its entry in the process table.
 */
export function taskAlive(sid: number): boolean {
  if (process.platform !== 'linux') {
    try {
      process.kill(-sid, 0);
      return true;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code !== 'ESRCH'; // EPERM: a member we may not signal
    }
  }
  return sessionMembers(sid).length > 0;
}

/**
 * The live (not zombie) processes of a session, from /proc; on other systems, or if /proc
 * cannot be read, none (the process group is signalled on its own).
 */
function sessionMembers(sid: number): number[] {
  if (process.platform !== 'linux') return [];
  let pids: string[];
  try {
    pids = fs.readdirSync('/proc');
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const pid of pids) {
    const c = pid.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    } catch {
      continue; // gone meanwhile
    }
    // pid (comm) state ppid pgrp session ...; comm may hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ', 4);
    if (Number(fields[3]) === sid && fields[0] !== 'Z' && fields[0] !== 'X') out.push(Number(pid));
  }
  return out;
}

/**
 * Resolves once no process of the task is alive (polling every 20 ms, slowing to 200 ms),
 * or `until()` says to stop waiting. Resolves true if the task is gone.
 */
export async function waitTaskGone(sid: number, until: () => boolean = () => false): Promise<boolean> {
  for (let delay = 20; ; delay = Math.min(200, delay * 2)) {
    if (!taskAlive(sid)) return true;
    if (until()) return false;
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}
