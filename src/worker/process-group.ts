/**
 * The processes of a task: a task is started as the leader of a session (and process
 * group) of its own, so that its whole tree can be signalled, and waited for, as one.
 *
 * The process group is not enough: a task may put some of its processes in groups of
 * their own (coreutils `timeout` does, and so does a shell with job control, `set -m`).
 * They stay in the task's session, which only `setsid` leaves. So on Linux the task is
 * every process of its session, found through /proc; elsewhere, its process group.
 *
 * Looking through /proc costs a read per process, so only the processes made since the
 * task's leader are read: pids are handed out in increasing order (wrapping at pid_max),
 * and nothing older than the leader can be in its session. That holds only while the pids
 * have not gone round a whole cycle since the leader (minutes on a busy host with the
 * old default pid_max of 32768): the kernel's count of forks (/proc/stat "processes",
 * which never wraps) says how many were handed out at most, and past half a cycle the
 * whole of /proc is read. A task that keeps forking
 * could slip between two looks, so a task is gone only after two looks in a row find
 * nothing, and SIGKILL freezes the task first (SIGSTOP, until no new process appears),
 * and is sent again by the task runner as long as any of the task is seen alive.
 * Nothing here starts processes; the command line's task runner does.
 */
import * as fs from 'node:fs';

/** How long SIGKILL may spend freezing a task that keeps forking (the event loop waits). */
const FREEZE_MS = 500;
/** How many rounds a pid that could not be read yet is looked at again (a fork still under way). */
const UNSEEN_ROUNDS = 3;

/** A task's processes: the session led by the process `sid`. */
export interface Task {
  sid: number;
  /** The kernel's count of forks just before the task was started (forkCount()). */
  forksBefore: number | null;
}

/** How many processes (and threads) the kernel has made since it booted; null if unknown. */
export function forkCount(): number | null {
  if (process.platform !== 'linux') return null;
  try {
    const stat = fs.readFileSync('/proc/stat', 'latin1');
    const at = stat.indexOf('\nprocesses ');
    const n = at < 0 ? NaN : Number.parseInt(stat.slice(at + 11), 10);
    return Number.isSafeInteger(n) ? n : null;
  } catch {
    return null;
  }
}

/** Sends a signal to every process of the task; false if none is left. */
export function signalTask(task: Task, signal: NodeJS.Signals): boolean {
  if (signal === 'SIGKILL' && process.platform === 'linux') return killTask(task);
  let any = send(-task.sid, signal);
  for (const pid of sessionMembers(task)) any = send(pid, signal) || any;
  return any;
}

/**
 * SIGKILL to a task: its processes are stopped first (a stopped process cannot fork), then
 * all are killed. After one look at the whole session, each round looks only at the pids
 * handed out since the round before, so a round is quick enough to catch a task whose
 * processes fork and exit as fast as they can: it ends after two rounds in which the task
 * made no new process. A pid handed out to a fork that is still under way cannot be read
 * yet; it is looked at again in the next few rounds.
 */
function killTask(task: Task): boolean {
  const { sid } = task;
  const stopped = new Set<number>();
  send(-sid, 'SIGSTOP');
  let from = lastPid();
  for (const pid of sessionMembers(task)) if (send(pid, 'SIGSTOP')) stopped.add(pid);
  let unseen = new Map<number, number>();
  const deadline = Date.now() + FREEZE_MS;
  for (let quiet = 0; from !== null && quiet < 2 && Date.now() < deadline; ) {
    const to = lastPid();
    if (to === null) break;
    const look = new Map<number, number>();
    for (const [pid, rounds] of unseen) if (rounds > 1) look.set(pid, rounds - 1);
    for (const pid of pidRange(from + 1, to)) look.set(pid, UNSEEN_ROUNDS);
    from = to;
    unseen = new Map();
    let found = false;
    for (const [pid, rounds] of look) {
      const session = sessionOf(pid);
      if (session === undefined) unseen.set(pid, rounds);
      else if (session === sid && !stopped.has(pid) && send(pid, 'SIGSTOP')) {
        stopped.add(pid);
        found = true;
      }
    }
    quiet = found ? 0 : quiet + 1;
  }
  let any = send(-sid, 'SIGKILL');
  for (const pid of stopped) any = send(pid, 'SIGKILL') || any;
  for (const pid of sessionMembers(task)) any = send(pid, 'SIGKILL') || any;
  return any;
}

/** The last pid handed out (Linux), or null. */
function lastPid(): number | null {
  try {
    const last = Number(fs.readFileSync('/proc/sys/kernel/ns_last_pid', 'latin1'));
    return Number.isSafeInteger(last) && last > 0 ? last : null;
  } catch {
    return null;
  }
}

/** The pids from `first` to `last`, wrapping at pid_max. */
function* pidRange(first: number, last: number): Generator<number> {
  if (first <= last + 1) {
    for (let pid = first; pid <= last; pid++) yield pid;
    return;
  }
  const max = pidMax();
  for (let pid = first; pid < max; pid++) yield pid;
  for (let pid = 1; pid <= last; pid++) yield pid;
}

function pidMax(): number {
  try {
    return Number(fs.readFileSync('/proc/sys/kernel/pid_max', 'latin1'));
  } catch {
    return 4_194_304;
  }
}

/**
 * The session of a live process; null for a zombie (which runs no code); undefined if
 * there is no such process, or not yet.
 */
function sessionOf(pid: number): number | null | undefined {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // pid (comm) state ppid pgrp session ...; comm may hold spaces and parentheses.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ', 4);
  return fields[0] === 'Z' || fields[0] === 'X' ? null : Number(fields[3]);
}

/** kill(2); false if the process (or group) is gone. */
function send(target: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(target, signal);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    return false;
  }
}

/**
 * Whether any process of the task is still alive. Zombies do not count: a process that
 * has exited but was not yet reaped (by an init that does not reap, as in some
 * containers) runs no code and holds nothing but its entry in the process table.
 */
export function taskAlive(task: Task): boolean {
  if (process.platform !== 'linux') {
    try {
      process.kill(-task.sid, 0);
      return true;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code !== 'ESRCH'; // EPERM: a member we may not signal
    }
  }
  return sessionMembers(task).length > 0;
}

/**
 * The live (not zombie) processes of the session led by `sid`, from /proc; on other
 * systems, or if /proc cannot be read, none (the process group is signalled on its own).
 * Only processes made since the leader are read (see the top of this file).
 */
function sessionMembers(task: Task): number[] {
  if (process.platform !== 'linux') return [];
  const { sid } = task;
  const since = pidsSince(task);
  let candidates: Iterable<number>;
  if (since !== null && since.count <= PROBE_AT_MOST) {
    // Few pids were handed out since the leader: look at each, not at the whole of /proc.
    candidates = since.pids();
  } else {
    let names: string[];
    try {
      names = fs.readdirSync('/proc');
    } catch {
      return [];
    }
    const newer = since?.has ?? (() => true);
    candidates = names.filter((n) => n.charCodeAt(0) >= 48 && n.charCodeAt(0) <= 57).map(Number).filter(newer);
  }
  const out: number[] = [];
  for (const pid of candidates) if (sessionOf(pid) === sid) out.push(pid);
  return out;
}

/** Up to this many pids handed out since a leader, each is looked at; past it, /proc is listed. */
const PROBE_AT_MOST = 512;

/**
 * The pids handed out at or after `leader`'s: from it to the last pid handed out (read
 * after any listing of /proc, so that every listed pid is covered), wrapping at pid_max.
 * null where that cannot be read, or where the pids may have gone round a whole cycle
 * since the leader: every pid counts then. (Exported for its test.)
 */
export function pidsSince(task: Task): { count: number; has: (pid: number) => boolean; pids: () => Iterable<number> } | null {
  const leader = task.sid;
  const forks = forkCount();
  if (task.forksBefore === null || forks === null) return null;
  let last: number;
  let max: number;
  try {
    last = Number(fs.readFileSync('/proc/sys/kernel/ns_last_pid', 'latin1'));
    max = Number(fs.readFileSync('/proc/sys/kernel/pid_max', 'latin1'));
  } catch {
    return null;
  }
  if (!Number.isSafeInteger(last) || !Number.isSafeInteger(max) || last <= 0 || max <= leader) return null;
  // Past half a cycle of pids, a range from the leader could hide a whole cycle.
  if (forks - task.forksBefore >= max / 2) return null;
  if (last >= leader) {
    return {
      count: last - leader + 1,
      has: (pid) => pid >= leader && pid <= last,
      pids: function* () {
        for (let pid = leader; pid <= last; pid++) yield pid;
      },
    };
  }
  // Wrapped past pid_max since the leader.
  return {
    count: max - leader + last + 1,
    has: (pid) => pid >= leader || pid <= last,
    pids: function* () {
      for (let pid = leader; pid < max; pid++) yield pid;
      for (let pid = 1; pid <= last; pid++) yield pid;
    },
  };
}

/**
 * Resolves once no process of the task is alive, seen twice in a row (polling every
 * 20 ms, slowing to 200 ms), or `until()` says to stop waiting. Resolves true if the task
 * is gone. `stillThere()` is called at each look that finds some of it alive: a task
 * that forked past a SIGKILL is killed again there.
 */
export async function waitTaskGone(task: Task, until: () => boolean = () => false, stillThere: () => void = () => {}): Promise<boolean> {
  let empty = 0;
  for (let delay = 20; ; ) {
    if (!taskAlive(task)) {
      if (++empty >= 2) return true;
      await new Promise((resolve) => setImmediate(resolve));
      continue;
    }
    empty = 0;
    if (until()) return false;
    stillThere();
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(200, delay * 2);
  }
}
