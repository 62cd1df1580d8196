import { checkQueueName } from '../../format/names.js';
import { openBroker } from '../open.js';
import { emit, table } from '../output.js';
import { type CommandSpec, CREATE, DEBUG, EXIT, FORMAT, listOf, ROOT_ARG, VERBOSE } from '../spec.js';

export const view: CommandSpec = {
  name: 'view',
  summary: 'List queues and how many messages they hold',
  help: 'Counts: ready (waiting), delayed (published with a delay not yet over), in flight (consumed, not\nacknowledged), expired (in flight past their lease and its grace), corrupt (moved aside).',
  args: [ROOT_ARG, { key: 'queue', description: 'comma-separated queues to show (default: all)', required: false, list: true }],
  options: [
    CREATE,
    { key: 'n', flags: '-n', description: 'only print the queue names (faster)', type: 'boolean' },
    FORMAT(['table', 'plain', 'json', 'yaml'], 'table'),
    VERBOSE,
    DEBUG,
  ],
  async run(input, ctx) {
    const wanted = listOf(input.queue).map(checkQueueName);
    const broker = await openBroker(input, ctx);
    const existing = await broker.listQueues();
    const missing = wanted.filter((q) => !existing.includes(q));
    for (const q of missing) ctx.err(`ddmq: error: queue ${q} does not exist in ${broker.root}`);
    const names = wanted.length > 0 ? wanted.filter((q) => existing.includes(q)) : existing;
    const format = String(input.format);
    if (input.n) {
      await emit(ctx, format === 'table' ? 'plain' : format, names.map((queue) => ({ queue })), (r) => String(r.queue));
    } else {
      const counts = await Promise.all(names.map(async (q) => (await broker.counts(q))[0]!));
      const rows = counts.map((c) => ({ queue: c.queue, ready: c.ready, delayed: c.delayed, in_flight: c.inFlight, expired: c.expired, corrupt: c.corrupt }));
      if (format === 'table') {
        ctx.out(table(['queue', 'ready', 'delayed', 'in flight', 'expired', 'corrupt'], rows.map((r) => [r.queue, r.ready, r.delayed, r.in_flight, r.expired, r.corrupt])));
      } else {
        await emit(ctx, format, rows, (r) => `${r.queue} ${r.ready} ${r.delayed} ${r.in_flight} ${r.expired} ${r.corrupt}`);
      }
    }
    return missing.length > 0 ? EXIT.USAGE : EXIT.OK;
  },
};
