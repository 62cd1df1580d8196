import { DdmqError } from '../../format/errors.js';
import type { QueueCounts } from '../../store/queue.js';
import { openBroker } from '../open.js';
import { emit, table } from '../output.js';
import { type CommandSpec, CREATE, DEBUG, exitCodeOver, FORMAT, ROOT_ARG, VERBOSE } from '../spec.js';
import { optionalQueues, reportFailure } from './each-queue.js';

export const view: CommandSpec = {
  name: 'view',
  summary: 'List queues and how many messages they hold',
  help:
    'Counts: ready (waiting), delayed (published with a delay, or waiting out a retry backoff), in flight\n' +
    '(consumed, not acknowledged), expired (in flight past their lease and its grace), corrupt (moved aside).\n' +
    'A queue that is named but missing, or cannot be read (a bad ddmq.yaml, a link in its place), is reported\n' +
    'on stderr and the others are shown; exit code 7 if some failed, the error\'s own code if all did.',
  args: [ROOT_ARG, { key: 'queue', description: 'comma-separated queues to show (default: all)', required: false, list: true }],
  options: [
    CREATE,
    { key: 'n', flags: '-n', description: 'only print the queue names (faster)', type: 'boolean' },
    FORMAT(['table', 'plain', 'json', 'yaml'], 'table'),
    VERBOSE,
    DEBUG,
  ],
  async run(input, ctx) {
    const names = optionalQueues(input);
    const broker = await openBroker(input, ctx);
    const format = String(input.format);
    const failures: DdmqError[] = [];
    const fail = (err: DdmqError) => {
      reportFailure(ctx, err);
      failures.push(err);
    };
    if (input.n) {
      const names: string[] = [];
      for (const entry of await broker.queueProblems(names.length === 0 ? undefined : names)) {
        if (entry.problem) fail(entry.problem);
        else names.push(entry.name);
      }
      await emit(ctx, format === 'table' ? 'plain' : format, names.map((queue) => ({ queue })), (r) => String(r.queue));
      return exitCodeOver(failures, names.length + failures.length);
    }
    const counts: QueueCounts[] = [];
    for (const r of await broker.counts(names.length === 0 ? undefined : names)) (r.error ? fail(r.error) : counts.push(r));
    const rows = counts.map((c) => ({ queue: c.queue, ready: c.ready, delayed: c.delayed, in_flight: c.inFlight, expired: c.expired, corrupt: c.corrupt }));
    if (format === 'table') {
      if (rows.length > 0 || failures.length === 0) {
        ctx.out(table(['queue', 'ready', 'delayed', 'in flight', 'expired', 'corrupt'], rows.map((r) => [r.queue, r.ready, r.delayed, r.in_flight, r.expired, r.corrupt])));
      }
    } else {
      await emit(ctx, format, rows, (r) => `${r.queue} ${r.ready} ${r.delayed} ${r.in_flight} ${r.expired} ${r.corrupt}`);
    }
    return exitCodeOver(failures, counts.length + failures.length);
  },
};
