/**
 * Process groups of tasks: a task is started as the leader of a group of its own, so that
 * its whole tree (a shell and what it started) can be signalled, and waited for, as one.
 * Nothing here starts processes; the command line's task runner does.
 */
import * as fs from 'node:fs';

/** Sends a signal to every process of a group; false if the group no longer exists. */
export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

/**
 * Whether any process of a group is still alive. Zombies do not count: a process that
 * has exited but was not yet reaped (by an init that does not reap, as in some
 * containers) runs no code and holds nothing but its entry in the process table.
 */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch (err) {
    // EPERM: a member we may not signal exists.
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
  return process.platform !== 'linux' || liveMembersOnLinux(pgid);
}

/** Looks through /proc for a member of the group that is not a zombie; true if /proc cannot tell. */
function liveMembersOnLinux(pgid: number): boolean {
  let pids: string[];
  try {
    pids = fs.readdirSync('/proc');
  } catch {
    return true;
  }
  for (const pid of pids) {
    if (!/^\d+$/.test(pid)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    } catch {
      continue; // gone meanwhile
    }
    // pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === pgid && fields[0] !== 'Z' && fields[0] !== 'X') return true;
  }
  return false;
}

/**
 * Resolves once no process of the group is alive (polling every 20 ms, slowing to 200 ms),
 * or `until()` says to stop waiting. Resolves true if the group is gone.
 */
export async function waitGroupGone(pgid: number, until: () => boolean = () => false): Promise<boolean> {
  for (let delay = 20; ; delay = Math.min(200, delay * 2)) {
    if (!groupAlive(pgid)) return true;
    if (until()) return false;
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}
