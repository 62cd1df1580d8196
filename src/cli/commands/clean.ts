import { checkQueueName } from '../../format/names.js';
import { openBroker } from '../open.js';
import { emit } from '../output.js';
import { type CommandSpec, CREATE, EXIT, listOf, REPORT_OPTIONS, ROOT_ARG } from '../spec.js';

export const clean: CommandSpec = {
  name: 'clean',
  summary: 'Requeue (or drop, at their limit) in-flight messages whose lease ran out',
  help: 'Without QUEUE, every queue of the root is cleaned.',
  args: [ROOT_ARG, { key: 'queue', description: 'comma-separated names of the queues to clean (default: all)', required: false, list: true }],
  options: [CREATE, ...REPORT_OPTIONS],
  async run(input, ctx) {
    const names = listOf(input.queue).map(checkQueueName);
    const broker = await openBroker(input, ctx);
    const results = [];
    for (const q of names.length === 0 ? [undefined] : names) results.push(...(await broker.clean(q)));
    const rows = results.map((r) => ({ queue: r.queue, requeued: r.requeued, dropped: r.dropped, dead_lettered: r.deadLettered, corrupt: r.corrupt, temps_removed: r.tempsRemoved }));
    if (!input.s) {
      await emit(ctx, String(input.format), rows, (r) => `cleaned ${r.queue} (${r.requeued} requeued, ${r.dropped} dropped, ${r.corrupt} corrupt)`);
    }
    return EXIT.OK;
  },
};
