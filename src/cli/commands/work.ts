import { DdmqError } from '../../format/errors.js';
import type { Message } from '../../format/message.js';
import { checkQueueName } from '../../format/names.js';
import type { WorkEvent } from '../../worker/work.js';
import type { TaskEnd } from '../run-task.js';
import { openBroker } from '../open.js';
import { type CommandSpec, DEBUG, EXIT, FORMAT, ROOT_ARG, VERBOSE } from '../spec.js';

const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
/** Seconds, past --kill-after and the wait for a killed group, that the worker waits for a task's runner. */
const RUNNER_MARGIN = 10;

export const workCommand: CommandSpec = {
  name: 'work',
  summary: 'Run a command once per message of a queue',
  help:
    'Runs COMMAND for each message, with the message text in place of {} in its arguments, in the\n' +
    'environment (DDMQ_MESSAGE, DDMQ_MESSAGE_ID, DDMQ_QUEUE) and on its standard input. Exit 0 acks\n' +
    'the message. Anything else is a failure: exit non-zero, killed, --timeout, or a command that\n' +
    'cannot start; the message is nacked, and by the queue\'s settings retried after a backoff\n' +
    '(retry_delay, retry_backoff, retry_delay_max), dropped or dead-lettered.\n' +
    '\n' +
    'Each task runs in a session of its own, and every process of that session is the task (also\n' +
    'those in groups of their own, as coreutils timeout makes). Ending a task (--timeout, a stop, a\n' +
    'lost lease) sends SIGTERM to all of it, and SIGKILL --kill-after seconds later. Whatever a\n' +
    'command leaves running is ended when it exits. A message is settled only once the task is gone.\n' +
    '\n' +
    'Leases are renewed every third of message_timeout while a task runs. A lease that is lost\n' +
    '(another host took the message back) ends the task; its message is neither acked nor nacked.\n' +
    '\n' +
    'SIGINT (Ctrl-C), SIGTERM or SIGHUP: no new messages; running tasks get --grace seconds to\n' +
    'finish, then are ended, and their messages released: requeued at once, not counted as an\n' +
    'attempt. A second signal ends the grace at once; a third sends SIGKILL at once. A task that\n' +
    'dies of a signal while the worker stops is released too. Exit 130/143/129.\n' +
    '\n' +
    '--idle-exit waits while anything in the queue can still become work: ready messages, messages\n' +
    'in flight on any host (their worker may fail or die), delayed ones due within the idle time.\n' +
    'A message whose worker died is taken within about message_timeout + expiry_grace + 6 s; a\n' +
    'worker exits --idle-exit seconds after nothing is left. --idle-ignore-in-flight: exit once\n' +
    'nothing is ready or due, without waiting for messages in flight elsewhere.\n' +
    '\n' +
    'Exit 6 if any task failed. A store error (queue deleted, disk read-only) stops the worker:\n' +
    'running tasks are ended, their messages released where possible; exit 2 or 4.\n' +
    '--format json: one event per line on stdout: {"event", "id", "message", "action", "due",\n' +
    '"error", "exit_code", "signal", "ms"}; events: done, failed, released, lease-lost, error.\n' +
    'Example: ddmq work /shared/ddmq tasks -j 4 --idle-exit 60 -- ./process.sh {}\n' +
    'In ddmq json, the command goes under "exec" as an array: {"cmd": "work", ..., "exec": ["./process.sh", "{}"]}',
  args: [
    ROOT_ARG,
    { key: 'queue', description: 'the queue to take messages from', required: true },
    { key: 'exec', description: 'the command to run and its arguments, after --', required: true, variadic: true },
  ],
  options: [
    { key: 'concurrency', flags: '-j, --concurrency <n>', description: 'commands running at once (default 1)', type: 'int' },
    { key: 'max_messages', flags: '--max-messages <n>', description: 'stop after taking this many messages (running ones finish)', type: 'int' },
    { key: 'idle_exit', flags: '--idle-exit <seconds>', description: 'stop once nothing in the queue could become work for this long (for batch jobs)', type: 'int' },
    {
      key: 'idle_ignore_in_flight',
      flags: '--idle-ignore-in-flight',
      description: 'with --idle-exit: do not wait for messages in flight elsewhere, only for ready and due ones',
      type: 'boolean',
    },
    { key: 'timeout', flags: '--timeout <seconds>', description: 'end a command that runs longer, and nack its message', type: 'int' },
    { key: 'grace', flags: '--grace <seconds>', description: 'on SIGINT/SIGTERM/SIGHUP, time running commands get before they are ended (default 30)', type: 'int' },
    { key: 'kill_after', flags: '--kill-after <seconds>', description: 'seconds between SIGTERM and SIGKILL when a task is ended (default 10)', type: 'int' },
    FORMAT(['plain', 'json'], 'plain'),
    VERBOSE,
    DEBUG,
  ],
  async run(input, ctx) {
    const queue = checkQueueName(input.queue);
    const command = input.exec as string[];
    if (!Array.isArray(command) || command.length === 0) throw new DdmqError('INVALID_ARGUMENT', 'no command given (put it after --)');
    const json = input.format === 'json';
    const timeout = input.timeout as number | undefined;
    if (timeout !== undefined && timeout < 1) throw new DdmqError('INVALID_ARGUMENT', `--timeout ${timeout}: at least 1 second`);
    const grace = (input.grace as number | undefined) ?? 30;
    const killAfter = (input.kill_after as number | undefined) ?? 10;
    for (const [flag, v] of [['--grace', grace], ['--kill-after', killAfter]] as const) {
      if (v < 0) throw new DdmqError('INVALID_ARGUMENT', `${flag} ${v}: expected 0 or more seconds`);
    }
    // Loaded here, not at start-up: only this command needs them.
    const [{ work }, { runTask }, { spawn }] = await Promise.all([
      import('../../worker/work.js'),
      import('../run-task.js'),
      import('node:child_process'),
    ]);
    const broker = await openBroker(input, ctx);
    const started = Date.now();
    let interrupted: NodeJS.Signals | undefined;
    const killNow = new AbortController();
    const ends = new WeakMap<Message, TaskEnd>();
    let progress: NodeJS.Timeout | undefined;
    /** A line on stderr, with the progress line (on a terminal) cleared first, to be drawn again. */
    const say = (text: string) => {
      if (progress) process.stderr.write('\r\x1b[K');
      ctx.err(text);
    };
    const warn = (text: string) => say(`ddmq: warning: ${text}`);

    const onEvent = (e: WorkEvent) => {
      const error = e.error === undefined ? null : e.error instanceof Error ? e.error.message : String(e.error);
      if (e.type === 'warning') {
        warn(error ?? 'unknown');
        return;
      }
      const end = ends.get(e.message);
      if (json) {
        ctx.out(
          JSON.stringify({
            event: e.type,
            id: e.message.id,
            message: e.message.message,
            action: e.action ?? null,
            due: e.due ?? null,
            error: e.type === 'done' ? null : error,
            exit_code: end?.exitCode ?? null,
            signal: end?.signal ?? null,
            ms: e.ms,
          }),
        );
      } else if (e.type === 'failed' || e.type === 'lease-lost' || e.type === 'error' || (input.v && e.type !== 'done')) {
        // Failures are always said, with why: a command that cannot start must not fail silently.
        const due = e.due === undefined ? '' : `, ready again in ${Math.max(0, Math.round(e.due - Date.now() / 1000))} s`;
        say(`ddmq: ${e.type} ${queue}/${e.message.id}${error ? `: ${error}` : ''}${e.action ? ` (${e.action}${due})` : ''}`);
      }
    };
    const worker = work(
      broker,
      queue,
      (msg, { signal }) =>
        runTask(spawn, command, msg, {
          queue,
          timeout,
          killAfter,
          signal,
          killNow: killNow.signal,
          stopping: () => interrupted !== undefined,
          quietStdout: json,
          onEnd: (end) => ends.set(msg, end),
          warn,
        }),
      {
        concurrency: (input.concurrency as number | undefined) ?? 1,
        maxMessages: input.max_messages as number | undefined,
        idleExit: input.idle_exit as number | undefined,
        idleIgnoresInFlight: Boolean(input.idle_ignore_in_flight),
        grace,
        // The runner itself ends a task within --kill-after plus the wait for a killed group.
        abortWait: killAfter + 5 + RUNNER_MARGIN,
        onEvent,
      },
    );

    // First signal: stop taking messages, grace for the running ones. Second: end the
    // grace now (SIGTERM to the tasks). Third: SIGKILL now.
    let signals = 0;
    const onSignal = (sig: NodeJS.Signals) => {
      signals++;
      interrupted ??= sig;
      if (signals === 1) {
        ctx.err(`ddmq: ${sig}: taking no more messages; running tasks have ${grace} s (send it again to end them now)`);
        worker.stop().catch(() => {});
      } else if (signals === 2) {
        ctx.err(`ddmq: ${sig} again: ending running tasks now (SIGTERM, SIGKILL after ${killAfter} s; once more: SIGKILL now)`);
        worker.stop(0).catch(() => {});
      } else {
        ctx.err(`ddmq: ${sig} again: killing running tasks (SIGKILL)`);
        killNow.abort();
      }
    };
    const handlers = STOP_SIGNALS.map((sig) => [sig, () => onSignal(sig)] as const);
    for (const [sig, h] of handlers) process.on(sig, h);
    // A terminal that hung up makes writes to it fail: that must not end the orderly stop.
    const ignoreStderrErrors = () => {};
    process.stderr.on('error', ignoreStderrErrors);

    // Progress on a terminal: done, failed, requeued, running, remaining, rate, ETA.
    if (process.stderr.isTTY && !json) {
      progress = setInterval(async () => {
        const s = worker.stats;
        const remaining = (await broker.counts(queue).catch(() => [{ ready: NaN }]))[0]!.ready;
        const rate = s.done / Math.max(1, (Date.now() - started) / 1000);
        const eta = rate > 0 && Number.isFinite(remaining) ? `${Math.round(remaining / rate)} s` : '?';
        process.stderr.write(`\r\x1b[Kdone ${s.done}  failed ${s.failed}  requeued ${s.released}  running ${s.running}  remaining ${remaining}  ${rate.toFixed(1)}/s  ETA ${eta}`);
      }, 500);
    }
    const summary = () => {
      clearInterval(progress);
      if (progress) process.stderr.write('\r\x1b[K');
      const s = worker.stats;
      const seconds = (Date.now() - started) / 1000;
      const lost = s.leaseLost > 0 ? `, ${s.leaseLost} lease lost` : '';
      ctx.err(`ddmq work: ${s.done} done, ${s.failed} failed, ${s.released} requeued at stop${lost}, in ${seconds.toFixed(1)} s`);
    };
    try {
      const stats = await worker.done;
      summary();
      if (interrupted) return interrupted === 'SIGINT' ? EXIT.SIGINT : interrupted === 'SIGTERM' ? EXIT.SIGTERM : EXIT.SIGHUP;
      return stats.failed > 0 ? EXIT.TASKS_FAILED : EXIT.OK;
    } catch (err) {
      summary();
      throw err; // reported as "ddmq: error: ..." with its exit code
    } finally {
      for (const [sig, h] of handlers) process.off(sig, h);
      process.stderr.off('error', ignoreStderrErrors);
      broker.close();
    }
  },
};
