import { checkQueueName } from '../../format/names.js';
import { openBroker } from '../open.js';
import { emit } from '../output.js';
import { type CommandSpec, CREATE, EXIT, listOf, REPORT_OPTIONS, ROOT_ARG } from '../spec.js';

export const redrive: CommandSpec = {
  name: 'redrive',
  summary: 'Move dead letters back into the queue they came from',
  help:
    'A queue whose settings name a dead_letter queue sends there, instead of dropping them, the\n' +
    'messages that are not requeued (past their requeue limit, or with requeue off), with their history\n' +
    'under "dead_letter" (where from, why, when, the requeue count and the last error). redrive moves them\n' +
    'back, their counters reset. A queue that does not exist is made only with -f; without it, --to such a\n' +
    'queue is refused, and a dead letter whose queue is gone stays. Exit code 5 if an id of --ids is not there.',
  args: [ROOT_ARG, { key: 'queue', description: 'the dead-letter queue', required: true }],
  options: [
    { key: 'to', flags: '--to <queue>', description: 'move them here instead of where each came from', type: 'string' },
    { key: 'ids', flags: '--ids <ids>', description: 'only these message ids (comma-separated)', type: 'string' },
    { key: 'n', flags: '-n <n>', description: 'move at most this many', type: 'int' },
    CREATE,
    ...REPORT_OPTIONS,
  ],
  async run(input, ctx) {
    const queue = checkQueueName(input.queue);
    const to = input.to === undefined ? undefined : checkQueueName(input.to);
    const broker = await openBroker(input, ctx);
    const ids = input.ids === undefined ? undefined : listOf(input.ids);
    const r = await broker.redrive(queue, { to, ids, limit: input.n as number | undefined });
    for (const id of r.missing) ctx.err(`ddmq: error: no dead letter with id ${id} in queue ${queue}`);
    if (!input.s) {
      await emit(ctx, String(input.format), [{ queue, moved: r.moved, skipped: r.skipped, missing: r.missing }], (row) => {
        const stayed = r.skipped ? ` (${r.skipped} with nowhere to go stayed)` : '';
        return `redrove ${row.moved} from ${row.queue}${stayed}`;
      });
    }
    return r.missing.length > 0 ? EXIT.NOT_FOUND : EXIT.OK;
  },
};
