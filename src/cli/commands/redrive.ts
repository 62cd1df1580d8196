import { checkQueueName } from '../../format/names.js';
import { openBroker } from '../open.js';
import { emit } from '../output.js';
import { type CommandSpec, EXIT, listOf, REPORT_OPTIONS, ROOT_ARG } from '../spec.js';

export const redrive: CommandSpec = {
  name: 'redrive',
  summary: 'Move dead letters back into the queue they came from',
  help:
    'A queue whose settings name a dead_letter queue sends there, instead of dropping them, the\n' +
    'messages that reach their requeue limit, with their history under "dead_letter" (where from,\n' +
    'when, the requeue count and the last error). redrive moves them back, their counters reset.',
  args: [ROOT_ARG, { key: 'queue', description: 'the dead-letter queue', required: true }],
  options: [
    { key: 'to', flags: '--to <queue>', description: 'move them here instead of where each came from', type: 'string' },
    { key: 'ids', flags: '--ids <ids>', description: 'only these message ids (comma-separated)', type: 'string' },
    { key: 'n', flags: '-n <n>', description: 'move at most this many', type: 'int' },
    ...REPORT_OPTIONS,
  ],
  async run(input, ctx) {
    const queue = checkQueueName(input.queue);
    const broker = await openBroker(input, ctx);
    const ids = input.ids === undefined ? undefined : listOf(input.ids);
    const r = await broker.redrive(queue, { to: input.to as string | undefined, ids, limit: input.n as number | undefined });
    if (!input.s) await emit(ctx, String(input.format), [{ queue, moved: r.moved, skipped: r.skipped }], (row) => `redrove ${row.moved} from ${row.queue}${r.skipped ? ` (${r.skipped} with nowhere to go stayed)` : ''}`);
    return EXIT.OK;
  },
};
