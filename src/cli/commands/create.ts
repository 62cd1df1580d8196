import { checkQueueName } from '../../format/names.js';
import { openBroker } from '../open.js';
import { emit } from '../output.js';
import { type CommandSpec, CREATE, DEBUG, EXIT, FORMAT, listOf, ROOT_ARG, SILENT, VERBOSE } from '../spec.js';

export const create: CommandSpec = {
  name: 'create',
  summary: 'Create queues',
  args: [ROOT_ARG, { key: 'queue', description: 'comma-separated names of the queues to create', required: true, list: true }],
  options: [CREATE, FORMAT(['plain', 'json', 'yaml'], 'plain'), SILENT, VERBOSE, DEBUG],
  async run(input, ctx) {
    const names = listOf(input.queue).map(checkQueueName);
    const broker = await openBroker(input, ctx);
    const rows = [];
    for (const queue of names) rows.push({ queue, created: await broker.createQueue(queue) });
    if (!input.s) {
      await emit(ctx, String(input.format), rows, (r) => (r.created ? `created queue ${r.queue}` : `queue ${r.queue} exists already`));
    }
    return EXIT.OK;
  },
};
