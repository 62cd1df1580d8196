/**
 * Running one message's command for `ddmq work`.
 *
 * - The command runs as the leader of a session (and process group) of its own
 *   (`detached`): a Ctrl-C at the terminal reaches the worker only, which then stops in
 *   order; and the task's whole tree can be ended as one: every process of its session,
 *   also those in groups of their own (`timeout`, `set -m`; see process-group.ts).
 * - Ending a task (its --timeout, the end of the worker's grace, a lost lease) sends
 *   SIGTERM to all of it, and SIGKILL `killAfter` seconds later if any of it is still
 *   alive.
 * - When the command exits, whatever it left running in its session is ended the same way.
 *   The promise settles only once no process of the task is alive, so that a message is
 *   acked, nacked or released only when nothing of its task runs any more. If processes
 *   outlive SIGKILL by KILLED_WAIT seconds (stuck in uninterruptible I/O, state D), a
 *   warning names the group and the task ends anyway: such processes can run none of its
 *   code any more.
 *
 * Outcomes: exit 0 resolves. A task that cannot start, exits non-zero, is killed by a
 * signal, or runs past --timeout rejects with TaskFailed (the message is nacked). A task
 * the worker ended, or one that died of a signal while the worker was stopping (a signal
 * sent to the whole job reaches the tasks too), rejects with TaskInterrupted (released),
 * which carries its exit code and signal for the task record.
 */
import type { ChildProcess, spawn as spawnFunction } from 'node:child_process';
import type { Message } from '../format/message.js';
import { forkCount, signalTask, type Task, taskAlive, waitTaskGone } from '../worker/process-group.js';
import { TaskInterrupted } from '../worker/work.js';

/** Seconds to wait for a task to be gone after SIGKILL before giving up on it. */
export const KILLED_WAIT = 5;
/** How long a slot waits after a command that could not start, in ms. */
const CANNOT_START_PAUSE_MS = 1000;
/** How long a task that died of a signal waits for the worker to hear of a stop, in ms. */
const SIGNAL_SETTLE_MS = 250;

export interface TaskEnd {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
}

/** A task that failed by itself: could not start, exited non-zero, was killed, or timed out. */
export class TaskFailed extends Error {
  constructor(
    message: string,
    readonly exitCode: number | null,
    readonly signal: NodeJS.Signals | null,
  ) {
    super(message);
    this.name = 'TaskFailed';
  }
}

export type TaskStream = number | ((chunk: Buffer) => void) | 'ignore';

/** How long, once no process of a task is left, its output pipes may take to be read to their end, in ms. */
const OUTPUT_DRAIN_MS = 1000;

export interface RunTaskOptions {
  queue: string;
  /** Seconds the command may run; then it is ended and fails. */
  timeout: number | undefined;
  /** Seconds between SIGTERM and SIGKILL. */
  killAfter: number;
  /** Aborted: end the task now (the worker's grace is over, or its lease was lost). */
  signal: AbortSignal;
  /** Aborted: SIGKILL the whole task at once. */
  killNow: AbortSignal;
  /** Whether the worker has begun to stop. */
  stopping: () => boolean;
  /**
   * Where the command's stdout and stderr go: an open file (its descriptor, written by the
   * command itself), a function that is given what it writes (read through a pipe), or
   * nowhere.
   */
  stdout: TaskStream;
  stderr: TaskStream;
  /** Told how the command ended, before the promise settles. */
  onEnd?: (end: TaskEnd) => void;
  warn: (text: string) => void;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs the command for one message; resolves on exit 0, rejects otherwise (see the file's comment). */
export async function runTask(spawn: typeof spawnFunction, command: string[], msg: Message, options: RunTaskOptions): Promise<TaskEnd> {
  const text = msg.text;
  let child: ChildProcess;
  const forksBefore = forkCount(); // before the leader's fork: see process-group.ts
  try {
    child = spawn(command[0]!, command.slice(1).map((a) => a.replaceAll('{}', text)), {
      detached: true,
      stdio: ['pipe', stdioOf(options.stdout), stdioOf(options.stderr)],
      env: { ...process.env, DDMQ_MESSAGE: text, DDMQ_MESSAGE_ID: msg.id, DDMQ_QUEUE: options.queue },
    });
  } catch (err) {
    // Refused before anything ran: a NUL in the message, an argument list too long, ...
    await sleep(CANNOT_START_PAUSE_MS);
    throw new TaskFailed(`cannot run ${command[0]}: ${(err as Error).message}`, null, null);
  }
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null } | { error: Error }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.on('error', (error) => {
      if (child.pid === undefined) resolve({ error }); // could not start: no process, no group
    });
  });
  child.stdin?.on('error', () => {}); // a command that does not read its input
  const drained = readOutput(child, options);
  child.stdin?.end(text);
  const pgid = child.pid;
  if (pgid === undefined) {
    const end = await exited;
    // Every message would fail the same way: at most one such attempt a second per task
    // slot, whatever retry_delay says, so that a typo cannot make the worker spin.
    await sleep(CANNOT_START_PAUSE_MS);
    throw new TaskFailed(`cannot run ${command[0]}: ${'error' in end ? end.error.message : 'no process'}`, null, null);
  }
  const task: Task = { sid: pgid, forksBefore };

  let why: 'timeout' | 'stop' | undefined;
  let ending = false;
  let killedAt: number | undefined;
  let finished = false;
  let killTimer: NodeJS.Timeout | undefined;
  const send = (sig: NodeJS.Signals) => {
    if (finished) return; // never signal a group id that may have been reused
    try {
      signalTask(task, sig);
    } catch (err) {
      options.warn(`cannot send ${sig} to the task of ${options.queue}/${msg.id} (session ${pgid}): ${(err as Error).message}`);
    }
  };
  const kill = () => {
    clearTimeout(killTimer);
    killedAt ??= Date.now();
    send('SIGKILL');
  };
  const end = () => {
    if (ending) return;
    ending = true;
    send('SIGTERM');
    killTimer = setTimeout(kill, options.killAfter * 1000);
  };
  const timer = options.timeout === undefined ? undefined : setTimeout(() => {
    why ??= 'timeout';
    end();
  }, options.timeout * 1000);
  const onAbort = () => {
    why ??= 'stop';
    end();
  };
  const onKillNow = () => {
    why ??= 'stop';
    end();
    kill();
  };
  if (options.signal.aborted) onAbort();
  else options.signal.addEventListener('abort', onAbort, { once: true });
  if (options.killNow.aborted) onKillNow();
  else options.killNow.addEventListener('abort', onKillNow, { once: true });

  let result: { code: number | null; signal: NodeJS.Signals | null };
  try {
    const exit = await exited;
    result = 'error' in exit ? { code: null, signal: null } : exit;
    clearTimeout(timer);
    // What the command left running in its session ends with it.
    if (taskAlive(task)) end();
    const gone = await waitTaskGone(
      task,
      () => killedAt !== undefined && Date.now() - killedAt > KILLED_WAIT * 1000,
      () => killedAt !== undefined && send('SIGKILL'), // what forked past the last SIGKILL
    );
    if (!gone) {
      options.warn(
        `processes of the task of ${options.queue}/${msg.id} (session ${pgid}) are still there ${KILLED_WAIT} s after SIGKILL: ` +
          'they may be stuck in uninterruptible I/O (state D); the task is taken as ended, as they can run none of its code any more',
      );
    }
    // What the task wrote last is read before it counts as ended. A process that left the
    // task's session may hold a pipe open: it is not waited for past OUTPUT_DRAIN_MS.
    await drained();
  } finally {
    finished = true;
    clearTimeout(timer);
    clearTimeout(killTimer);
    options.signal.removeEventListener('abort', onAbort);
    options.killNow.removeEventListener('abort', onKillNow);
  }

  const { code, signal } = result;
  options.onEnd?.({ exitCode: code, signal });
  const how = signal !== null ? `killed by ${signal}` : `exit code ${code}`;
  if (why === 'timeout') throw new TaskFailed(`timed out after ${options.timeout} s (${how})`, code, signal);
  if (why === 'stop') throw new TaskInterrupted(`stopped by the worker (${how})`, { exitCode: code, signal });
  if (code === 0) return { exitCode: code, signal };
  if (signal !== null) {
    // A signal sent to the whole job (scancel, a TERM to every process) reaches the worker
    // too, maybe a moment later: then the task was stopped, not failed.
    if (!options.stopping()) await sleep(SIGNAL_SETTLE_MS);
    if (options.stopping()) throw new TaskInterrupted(`${how} while the worker was stopping`, { exitCode: code, signal });
  }
  throw new TaskFailed(how, code, signal);
}

function stdioOf(stream: TaskStream): number | 'pipe' | 'ignore' {
  return typeof stream === 'function' ? 'pipe' : stream;
}

/** Passes the piped streams' data on; the function returned waits (a bounded time) for their ends. */
function readOutput(child: ChildProcess, options: RunTaskOptions): () => Promise<void> {
  const ends: Promise<void>[] = [];
  const streams = [
    [child.stdout, options.stdout],
    [child.stderr, options.stderr],
  ] as const;
  for (const [stream, target] of streams) {
    if (stream === null || typeof target !== 'function') continue;
    stream.on('data', (chunk: Buffer) => target(chunk));
    ends.push(
      new Promise<void>((resolve) => {
        stream.once('end', resolve);
        stream.once('close', resolve);
        stream.once('error', () => resolve());
      }),
    );
  }
  return async () => {
    if (ends.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(ends), new Promise((resolve) => (timer = setTimeout(resolve, OUTPUT_DRAIN_MS)))]);
    clearTimeout(timer);
    for (const [stream] of streams) stream?.destroy();
  };
}
