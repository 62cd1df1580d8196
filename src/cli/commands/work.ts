import { DdmqError } from '../../format/errors.js';
import type { Message } from '../../format/message.js';
import { checkQueueName } from '../../format/names.js';
import type { WorkEvent } from '../../worker/work.js';
import { openBroker } from '../open.js';
import { type CommandSpec, DEBUG, EXIT, FORMAT, ROOT_ARG, VERBOSE } from '../spec.js';

export const workCommand: CommandSpec = {
  name: 'work',
  summary: 'Run a command once per message of a queue',
  help:
    'Runs COMMAND for each message, with the message text in place of {} in its arguments, in the\n' +
    'environment (DDMQ_MESSAGE, DDMQ_MESSAGE_ID, DDMQ_QUEUE) and on its standard input. Exit 0 acks\n' +
    'the message; anything else nacks it (requeued within its limits). Leases are renewed while a\n' +
    'command runs. SIGINT/SIGTERM: no new messages; running commands get --grace seconds, then are\n' +
    'killed and their messages requeued; exit 130/143. Exit 6 if any task failed.\n' +
    'Example: ddmq work /shared/ddmq tasks -j 4 --idle-exit 60 -- ./process.sh {}\n' +
    'In ddmq json, the command goes under "exec" as an array: {"cmd": "work", ..., "exec": ["./process.sh", "{}"]}',
  args: [
    ROOT_ARG,
    { key: 'queue', description: 'the queue to take messages from', required: true },
    { key: 'exec', description: 'the command to run and its arguments, after --', required: true, variadic: true },
  ],
  options: [
    { key: 'concurrency', flags: '-j, --concurrency <n>', description: 'commands running at once (default 1)', type: 'int' },
    { key: 'max_messages', flags: '--max-messages <n>', description: 'stop after taking this many messages', type: 'int' },
    { key: 'idle_exit', flags: '--idle-exit <seconds>', description: 'stop once the queue has been empty this long (for batch jobs)', type: 'int' },
    { key: 'timeout', flags: '--timeout <seconds>', description: 'kill a command that runs longer, and nack its message', type: 'int' },
    { key: 'grace', flags: '--grace <seconds>', description: 'on SIGINT/SIGTERM, time running commands get before they are killed (default 30)', type: 'int' },
    FORMAT(['plain', 'json'], 'plain'),
    VERBOSE,
    DEBUG,
  ],
  async run(input, ctx) {
    const queue = checkQueueName(input.queue);
    const command = input.exec as string[];
    if (!Array.isArray(command) || command.length === 0) throw new DdmqError('INVALID_ARGUMENT', 'no command given (put it after --)');
    const json = input.format === 'json';
    // Loaded here, not at start-up: only this command needs them.
    const [{ work }, { spawn }] = await Promise.all([import('../../worker/work.js'), import('node:child_process')]);
    const broker = await openBroker(input, ctx);
    const timeout = input.timeout as number | undefined;
    if (timeout !== undefined && timeout < 1) throw new DdmqError('INVALID_ARGUMENT', `--timeout ${timeout}: at least 1 second`);
    const started = Date.now();
    let interrupted: NodeJS.Signals | undefined;

    const onEvent = (e: WorkEvent) => {
      if (json) {
        ctx.out(JSON.stringify({ event: e.type, id: e.message.id, message: e.message.message, action: e.action ?? null, error: e.error === undefined ? null : String((e.error as Error).message ?? e.error), ms: e.ms }));
      } else if (input.v && e.type !== 'done') {
        ctx.err(`ddmq: ${e.type} ${queue}/${e.message.id}${e.error ? `: ${(e.error as Error).message ?? e.error}` : ''}`);
      }
    };
    const worker = work(broker, queue, (msg, { signal }) => runTask(spawn, command, msg, queue, { timeout, signal, quietStdout: json }), {
      concurrency: (input.concurrency as number | undefined) ?? 1,
      maxMessages: input.max_messages as number | undefined,
      idleExit: input.idle_exit as number | undefined,
      grace: (input.grace as number | undefined) ?? 30,
      onEvent,
    });
    const stopOn = (sig: NodeJS.Signals) => {
      interrupted ??= sig;
      ctx.err(`ddmq: ${sig}: taking no more messages; running tasks have ${(input.grace as number | undefined) ?? 30} s`);
      void worker.stop();
    };
    const onInt = () => stopOn('SIGINT');
    const onTerm = () => stopOn('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);

    // Progress on a terminal: done, failed, requeued, running, remaining, rate, ETA.
    let progress: NodeJS.Timeout | undefined;
    if (process.stderr.isTTY && !json) {
      progress = setInterval(async () => {
        const s = worker.stats;
        const remaining = (await broker.counts(queue).catch(() => [{ ready: NaN }]))[0]!.ready;
        const rate = s.done / Math.max(1, (Date.now() - started) / 1000);
        const eta = rate > 0 && Number.isFinite(remaining) ? `${Math.round(remaining / rate)} s` : '?';
        process.stderr.write(`\r\x1b[Kdone ${s.done}  failed ${s.failed}  requeued ${s.released}  running ${s.running}  remaining ${remaining}  ${rate.toFixed(1)}/s  ETA ${eta}`);
      }, 500);
    }
    const stats = await worker.done.finally(() => {
      clearInterval(progress);
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      broker.close();
    });
    if (progress) process.stderr.write('\r\x1b[K');
    const seconds = (Date.now() - started) / 1000;
    ctx.err(`ddmq work: ${stats.done} done, ${stats.failed} failed, ${stats.released} requeued at stop, in ${seconds.toFixed(1)} s`);
    if (interrupted) return interrupted === 'SIGINT' ? EXIT.SIGINT : EXIT.SIGTERM;
    return stats.failed > 0 ? EXIT.TASKS_FAILED : EXIT.OK;
  },
};

/** Runs the command for one message; resolves on exit 0, rejects otherwise. */
function runTask(
  spawn: typeof import('node:child_process').spawn,
  command: string[],
  msg: Message,
  queue: string,
  options: { timeout: number | undefined; signal: AbortSignal; quietStdout: boolean },
): Promise<void> {
  const text = msg.text;
  return new Promise((resolve, reject) => {
    const child = spawn(command[0]!, command.slice(1).map((a) => a.replaceAll('{}', text)), {
      stdio: ['pipe', options.quietStdout ? 'ignore' : 'inherit', 'inherit'],
      env: { ...process.env, DDMQ_MESSAGE: text, DDMQ_MESSAGE_ID: msg.id, DDMQ_QUEUE: queue },
    });
    let why: string | undefined;
    const kill = (reason: string) => {
      why ??= reason;
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    };
    const timer = options.timeout === undefined ? undefined : setTimeout(() => kill(`timed out after ${options.timeout} s`), options.timeout * 1000);
    const onAbort = () => kill('stopped');
    options.signal.addEventListener('abort', onAbort, { once: true });
    child.stdin.on('error', () => {}); // a command that does not read its input
    child.stdin.end(text);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${command[0]}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      options.signal.removeEventListener('abort', onAbort);
      if (code === 0 && why === undefined) resolve();
      else reject(new Error(why ?? (signal ? `killed by ${signal}` : `exit code ${code}`)));
    });
  });
}
