import { DdmqError } from '../../format/errors.js';
import type { Message } from '../../format/message.js';
import { resolve } from 'node:path';
import { checkQueueName } from '../../format/names.js';
import type { WorkEvent } from '../../worker/work.js';
import type { TaskEnd, TaskStream } from '../run-task.js';
import type { Joblog } from '../joblog.js';
import type { OutputFile } from '../task-output.js';
import { openBroker } from '../open.js';
import { makeFolderFor } from '../make-folder.js';
import { type CommandSpec, DEBUG, EXIT, FORMAT, ROOT_ARG, VERBOSE } from '../spec.js';

const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
/** Seconds, past --kill-after and the wait for a killed group, that the worker waits for a task's runner. */
const RUNNER_MARGIN = 10;

/** What is known of one task that ran, until its line is written to the joblog. */
interface TaskRecord {
  seq: number;
  start: number;
  attempt: number;
  sent: number;
  command: string[];
  files?: { stdout: OutputFile; stderr: OutputFile };
  /** Set once no process of the task is left. */
  end?: { exitCode: number | null; signal: NodeJS.Signals | null; runtimeMs: number; received: number };
  /** Set by the task's event: done, requeued, dead-lettered, dropped, released, lease-lost, error. */
  outcome?: string;
}

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
    '"error", "exit_code", "signal", "ms", "host", "pid", "attempt", "stdout", "stderr"}; events:\n' +
    'done, failed, released, lease-lost, error. "ms": the task\'s run time; "pid": the worker\'s;\n' +
    '"attempt": 1 + the message\'s requeue count; "stdout"/"stderr": its files with --output, else null.\n' +
    '\n' +
    'Task output: without --output, the tasks\' stdout and stderr pass through the worker\'s own, in\n' +
    'whole lines (lines of tasks running at once never mix), and never inside the progress line on a\n' +
    'terminal; with --format json, a task\'s stdout is dropped (stdout carries the events). With\n' +
    '--output DIR, they go to DIR/ID.out and DIR/ID.err (ID: the message id) for a first attempt,\n' +
    'DIR/ID.N.out and DIR/ID.N.err for attempt N; a name already taken (a rerun of the same attempt,\n' +
    'or anything else there, a link included) moves on to the next free number. Files are only ever\n' +
    'made new (O_EXCL, O_NOFOLLOW): nothing is overwritten, no link followed.\n' +
    '\n' +
    '--joblog FILE: one tab-separated line per task that ran, once it has ended and its message is\n' +
    'settled, as GNU parallel\'s --joblog: Seq, Host, Starttime (epoch s), JobRuntime (s), Send (stdin\n' +
    'bytes), Receive (stdout + stderr bytes), Exitval (-1: none), Signal (its number, 0: none), then\n' +
    'Queue, MessageId, Attempt, Outcome (done, requeued, dead-lettered, dropped, released, lease-lost,\n' +
    'error), Stdout, Stderr (--output files, else -), and Command. Appended; a header when the file is\n' +
    'empty. Give each worker its own file: %h is the host, %p the worker\'s pid, %j the Slurm job\n' +
    '(JOBID_TASKID in an array task, else $SLURM_JOB_ID; outside Slurm HOST-PID), %% a %. --output takes\n' +
    'them too. Example: --joblog joblog/%j.tsv\n' +
    '\n' +
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
    {
      key: 'joblog',
      flags: '--joblog <file>',
      description: 'append one tab-separated line per finished task to FILE (made with a header if new; one file per worker: %h host, %p pid, %j Slurm job)',
      type: 'string',
    },
    {
      key: 'output',
      flags: '--output <dir>',
      description: "each task's stdout and stderr into DIR/ID.out and DIR/ID.err (ID.N.out for attempt N), not through the worker",
      type: 'string',
    },
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
    const [{ work, TaskInterrupted }, { runTask }, { spawn }, fs, { hostname }, { Joblog, expandPlaceholders, joblogLine }, { LineSink, Terminal, outputFiles }] =
      await Promise.all([
        import('../../worker/work.js'),
        import('../run-task.js'),
        import('node:child_process'),
        import('node:fs'),
        import('node:os'),
        import('../joblog.js'),
        import('../task-output.js'),
      ]);
    type LineSink = InstanceType<typeof LineSink>;
    const host = hostname();
    let outputDir: string | undefined;
    if (input.output !== undefined) {
      outputDir = resolve(expandPlaceholders(String(input.output)));
      makeFolderFor('--output', outputDir, outputDir);
      try {
        if (!fs.statSync(outputDir).isDirectory()) throw Object.assign(new Error('not a folder'), { code: 'ENOTDIR' });
        fs.accessSync(outputDir, fs.constants.W_OK | fs.constants.X_OK);
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        throw new DdmqError(e.code === 'ENOTDIR' ? 'INVALID_ARGUMENT' : 'IO', `--output ${outputDir}: ${e.message}`, { path: outputDir, osCode: e.code });
      }
    }
    let outputFailure: DdmqError | undefined;
    const joblog: Joblog | undefined = input.joblog === undefined ? undefined : Joblog.open(expandPlaceholders(String(input.joblog)));
    const broker = await openBroker(input, ctx).catch((err) => {
      joblog?.close();
      throw err;
    });
    const terminal = new Terminal(process.stdout, process.stderr);
    let seq = 0;
    const records = new Map<Message, TaskRecord>();
    const started = Date.now();
    let interrupted: NodeJS.Signals | undefined;
    const killNow = new AbortController();
    const ends = new WeakMap<Message, TaskEnd>();
    let progress: NodeJS.Timeout | undefined;
    /** A line on stderr, with the progress line (on a terminal) cleared first and drawn again after. */
    const say = (text: string) => {
      if (progress) terminal.write('stderr', `${text}\n`);
      else ctx.err(text);
    };
    const warn = (text: string) => say(`ddmq: warning: ${text}`);
    let joblogFailed = false;
    /** Writes the task's joblog line once both its end and its outcome are known. */
    const logTask = (msg: Message, force = false) => {
      const record = records.get(msg);
      if (record === undefined || (!force && (record.end === undefined || record.outcome === undefined))) return;
      records.delete(msg);
      if (joblog === undefined) return;
      try {
        joblog.write(
          joblogLine({
            seq: record.seq,
            host,
            start: record.start,
            runtimeMs: record.end?.runtimeMs ?? Date.now() - record.start,
            sent: record.sent,
            received: record.end?.received ?? 0,
            exitCode: record.end?.exitCode ?? null,
            signal: record.end?.signal ?? null,
            queue,
            messageId: msg.id,
            attempt: record.attempt,
            outcome: record.outcome ?? 'unknown',
            stdout: record.files?.stdout.path ?? null,
            stderr: record.files?.stderr.path ?? null,
            command: record.command,
          }),
        );
        joblogFailed = false;
      } catch (err) {
        if (!joblogFailed) warn(`--joblog ${joblog.path}: ${(err as Error).message} (said once until a line is written again)`);
        joblogFailed = true;
      }
    };

    const onEvent = (e: WorkEvent) => {
      const error = e.error === undefined ? null : e.error instanceof Error ? e.error.message : String(e.error);
      if (e.type === 'warning') {
        warn(error ?? 'unknown');
        return;
      }
      const end = ends.get(e.message);
      const record = records.get(e.message);
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
            host,
            pid: process.pid,
            attempt: record?.attempt ?? e.message.requeueCounter + 1,
            stdout: record?.files?.stdout.path ?? null,
            stderr: record?.files?.stderr.path ?? null,
          }),
        );
      } else if (e.type === 'failed' || e.type === 'lease-lost' || e.type === 'error' || (input.v && e.type !== 'done')) {
        // Failures are always said, with why: a command that cannot start must not fail silently.
        const due = e.due === undefined ? '' : `, ready again in ${Math.max(0, Math.round(e.due - Date.now() / 1000))} s`;
        say(`ddmq: ${e.type} ${queue}/${e.message.id}${error ? `: ${error}` : ''}${e.action ? ` (${e.action}${due})` : ''}`);
      }
      if (record !== undefined && record.outcome === undefined) {
        record.outcome = e.type === 'failed' ? (e.action ?? 'failed') : e.type;
        logTask(e.message);
      }
    };
    const handler = async (msg: Message, { signal }: { signal: AbortSignal }) => {
      const record: TaskRecord = {
        seq: ++seq,
        start: Date.now(),
        attempt: msg.requeueCounter + 1,
        sent: Buffer.byteLength(msg.text),
        command: [command[0]!, ...command.slice(1).map((a) => a.replaceAll('{}', msg.text))],
      };
      records.set(msg, record);
      const sinks: LineSink[] = [];
      let streams: { stdout: TaskStream; stderr: TaskStream };
      if (outputDir !== undefined) {
        try {
          record.files = outputFiles(outputDir, msg.id, record.attempt);
        } catch (err) {
          // Not the task's fault: its message is given back, and the worker stops.
          records.delete(msg);
          outputFailure ??= err instanceof DdmqError ? err : new DdmqError('IO', `--output ${outputDir}: ${(err as Error).message}`, { path: outputDir, osCode: (err as NodeJS.ErrnoException).code });
          worker.stop(0).catch(() => {});
          throw new TaskInterrupted(`cannot make its output files: ${(err as Error).message}`);
        }
        streams = { stdout: record.files.stdout.fd, stderr: record.files.stderr.fd };
      } else {
        // Through the worker, in whole lines; with --format json, stdout carries the events only.
        const out = new LineSink((chunk) => (json ? undefined : terminal.write('stdout', chunk)));
        const err = new LineSink((chunk) => terminal.write('stderr', chunk));
        sinks.push(out, err);
        streams = { stdout: (chunk) => out.push(chunk), stderr: (chunk) => err.push(chunk) };
      }
      record.start = Date.now();
      let taskEnd: TaskEnd | undefined;
      try {
        return await runTask(spawn, command, msg, {
          queue,
          timeout,
          killAfter,
          signal,
          killNow: killNow.signal,
          stopping: () => interrupted !== undefined,
          ...streams,
          onEnd: (end) => (taskEnd = end),
          warn,
        });
      } finally {
        for (const sink of sinks) sink.flush();
        let received = sinks.reduce((n, sink) => n + sink.bytes, 0);
        for (const file of [record.files?.stdout, record.files?.stderr]) {
          if (file === undefined) continue;
          try {
            received += fs.fstatSync(file.fd).size;
            fs.closeSync(file.fd);
          } catch (err) {
            warn(`${file.path}: ${(err as Error).message}`);
          }
        }
        if (taskEnd) ends.set(msg, taskEnd);
        record.end = { exitCode: taskEnd?.exitCode ?? null, signal: taskEnd?.signal ?? null, runtimeMs: Date.now() - record.start, received };
        logTask(msg);
      }
    };
    const worker = work(
      broker,
      queue,
      handler,
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
        say(`ddmq: ${sig}: taking no more messages; running tasks have ${grace} s (send it again to end them now)`);
        worker.stop().catch(() => {});
      } else if (signals === 2) {
        say(`ddmq: ${sig} again: ending running tasks now (SIGTERM, SIGKILL after ${killAfter} s; once more: SIGKILL now)`);
        worker.stop(0).catch(() => {});
      } else {
        say(`ddmq: ${sig} again: killing running tasks (SIGKILL)`);
        killNow.abort();
      }
    };
    const handlers = STOP_SIGNALS.map((sig) => [sig, () => onSignal(sig)] as const);
    for (const [sig, h] of handlers) process.on(sig, h);
    // A terminal that hung up makes writes to it fail: that must not end the orderly stop.
    const ignoreStderrErrors = () => {};
    process.stderr.on('error', ignoreStderrErrors);

    // Progress on a terminal: done, failed, requeued, running, remaining, rate, ETA.
    let closed = false;
    if (process.stderr.isTTY && !json) {
      progress = setInterval(async () => {
        const s = worker.stats;
        const remaining = (await broker.counts(queue).catch(() => [{ ready: NaN }]))[0]!.ready;
        const rate = s.done / Math.max(1, (Date.now() - started) / 1000);
        const eta = rate > 0 && Number.isFinite(remaining) ? `${Math.round(remaining / rate)} s` : '?';
        if (!closed) terminal.progress(`done ${s.done}  failed ${s.failed}  requeued ${s.released}  running ${s.running}  remaining ${remaining}  ${rate.toFixed(1)}/s  ETA ${eta}`);
      }, 500);
    }
    const summary = () => {
      closed = true;
      clearInterval(progress);
      terminal.clearProgress();
      // Tasks whose runner was given up on, or whose event never came (a store error).
      for (const msg of [...records.keys()]) logTask(msg, true);
      joblog?.close();
      const s = worker.stats;
      const seconds = (Date.now() - started) / 1000;
      const lost = s.leaseLost > 0 ? `, ${s.leaseLost} lease lost` : '';
      ctx.err(`ddmq work: ${s.done} done, ${s.failed} failed, ${s.released} requeued at stop${lost}, in ${seconds.toFixed(1)} s`);
    };
    try {
      const stats = await worker.done;
      summary();
      if (outputFailure) throw outputFailure;
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
