import * as fs from 'node:fs';
import { DdmqError } from '../../format/errors.js';
import type { PublishOptions } from '../../store/queue.js';
import { checkQueueName } from '../../format/names.js';
import { openBroker } from '../open.js';
import { emit } from '../output.js';
import { type CommandSpec, CREATE, EXIT, type Input, leaseFromTimeout, REPORT_OPTIONS, ROOT_ARG, type RunContext, SKIP_CLEANING } from '../spec.js';

export const publish: CommandSpec = {
  name: 'publish',
  summary: 'Publish a message to a queue',
  help:
    'With --json-message, MESSAGE is parsed as a JSON value (object, array, number...) and stored as such.\n' +
    'With --file, every line is a message (a JSON value with --json-message); empty lines are skipped.\n' +
    'A terminal shows the progress; at the end the count is printed.',
  args: [
    ROOT_ARG,
    { key: 'queue', description: 'the queue to publish to', required: true },
    { key: 'message', description: 'the message text (or use --file)', required: false, anyJson: true },
  ],
  options: [
    CREATE,
    { key: 'priority', flags: '-p, --priority <n>', description: 'priority, lower is served first (default: the priority setting, 999)', type: 'int' },
    { key: 'timeout', flags: '-t, --timeout <seconds>', description: "this message's lease once consumed (default: the message_timeout setting)", type: 'int' },
    { key: 'requeue', flags: '-r, --requeue', description: 'requeue on nack or expiry (default: the requeue setting)', type: 'boolean' },
    { key: 'no_requeue', flags: '--no-requeue', description: 'drop on nack or expiry instead (of -r and --no-requeue the last wins)', type: 'boolean' },
    { key: 'requeue_limit', flags: '-l, --requeue_limit <n>', description: 'how many times it may be requeued (default: unlimited)', type: 'int', hiddenAlias: '--requeue-limit' },
    { key: 'requeue_prio', flags: '--requeue_prio <n>', description: 'priority when requeued; implies -r (default: the requeue_prio setting)', type: 'int', hiddenAlias: '--requeue-prio' },
    { key: 'json_message', flags: '--json-message', description: 'parse MESSAGE as a JSON value', type: 'boolean' },
    { key: 'delay', flags: '--delay <seconds>', description: 'keep the message out of sight (in delayed/) this long', type: 'int' },
    { key: 'file', flags: '--file <file>', description: 'publish one message per line of FILE ("-": standard input), in order', type: 'string' },
    SKIP_CLEANING,
    ...REPORT_OPTIONS,
  ],
  async run(input, ctx) {
    const queue = checkQueueName(input.queue);
    if ((input.file === undefined) === (input.message === undefined)) {
      throw new DdmqError('INVALID_ARGUMENT', 'give either a MESSAGE or --file FILE, not both or neither');
    }
    if (input.requeue === true && input.no_requeue === true) {
      throw new DdmqError('INVALID_ARGUMENT', '"requeue" and "no_requeue" contradict each other');
    }
    if (input.requeue_prio !== undefined && (input.no_requeue === true || input.requeue === false)) {
      throw new DdmqError('INVALID_ARGUMENT', '--requeue_prio implies a requeue, and --no-requeue says none: they contradict each other');
    }
    if (input.file !== undefined) return publishFile(input, ctx, queue, String(input.file));
    let body = input.message;
    if (input.json_message && typeof body === 'string') {
      try {
        body = JSON.parse(body);
      } catch (err) {
        throw new DdmqError('INVALID_ARGUMENT', `--json-message: the message is not valid JSON (${(err as Error).message})`);
      }
    }
    const broker = await openBroker(input, ctx);
    // Requeue expired messages first, as the original does; the temp-file sweep is left to clean.
    if (!input.skip_cleaning && (await broker.queueExists(queue))) await broker.clean(queue, { temps: false });
    const msg = await broker.publish(queue, body, publishOptionsOf(input));
    // A delayed message waits in delayed/ under its due second; it gets its ready name then.
    const delayed = msg.due === undefined ? {} : { delayed_as: `${queue}/delayed/${msg.due}.${msg.filename}`, ready_at: msg.due };
    const shown = (r: Record<string, unknown>) =>
      msg.due === undefined ? `published ${queue}/${r.filename}` : `published ${r.delayed_as} (ready at ${new Date(msg.due * 1000).toISOString()}, as ${queue}/${r.filename})`;
    if (!input.s) await emit(ctx, String(input.format), [{ ...msg.toJSON(), ...delayed }], shown);
    return EXIT.OK;
  },
};

/** --file: one message per line, in order, in batches; progress on a terminal. */
async function publishFile(input: Input, ctx: RunContext, queue: string, file: string): Promise<number> {
  let size = 0;
  if (file !== '-') {
    try {
      size = fs.statSync(file).size;
    } catch (err) {
      throw new DdmqError('INVALID_ARGUMENT', `--file ${file}: ${(err as Error).message}`);
    }
  }
  const broker = await openBroker(input, ctx);
  // Before the reading below starts libuv's thread pool: with fsync, batches sync together.
  await broker.startSyncThreads(queue);
  let stream: NodeJS.ReadableStream;
  if (file === '-') stream = process.stdin;
  else {
    try {
      stream = fs.createReadStream(file);
    } catch (err) {
      throw new DdmqError('INVALID_ARGUMENT', `--file ${file}: ${(err as Error).message}`);
    }
  }
  const { createInterface } = await import('node:readline'); // only --file needs it
  const options = publishOptionsOf(input);
  const tty = process.stderr.isTTY === true;
  let published = 0;
  let bytes = 0;
  let lineNo = 0;
  let batch: unknown[] = [];
  const flush = async () => {
    published += await broker.publishMany(queue, batch, options);
    batch = [];
    if (tty) process.stderr.write(`\r\x1b[Kpublished ${published}${size ? ` (${Math.floor((bytes / size) * 100)}%)` : ''}`);
  };
  for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) {
    lineNo++;
    bytes += Buffer.byteLength(line) + 1;
    if (line.length === 0) continue;
    if (input.json_message) {
      try {
        batch.push(JSON.parse(line));
      } catch (err) {
        await flush();
        throw new DdmqError('INVALID_ARGUMENT', `--file ${file}, line ${lineNo}: not valid JSON (${(err as Error).message}); ${published} lines before it were published`);
      }
    } else batch.push(line);
    if (batch.length >= 1000) await flush();
  }
  await flush();
  if (tty) process.stderr.write('\r\x1b[K');
  if (!input.s) await emit(ctx, String(input.format), [{ queue, published }], (r) => `published ${r.published} messages to ${r.queue}`);
  return EXIT.OK;
}

/** The library's publish options from the command's input. */
function publishOptionsOf(input: Input): PublishOptions {
  return {
    priority: input.priority as number | undefined,
    lease: leaseFromTimeout(input),
    requeue: input.requeue === true ? true : input.requeue === false || input.no_requeue === true ? false : undefined,
    requeuePrio: input.requeue_prio as number | undefined,
    requeueLimit: input.requeue_limit as number | undefined,
    delay: input.delay as number | undefined,
  };
}
