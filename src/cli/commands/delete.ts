import { checkQueueName } from '../../format/names.js';
import { openBroker } from '../open.js';
import { emit } from '../output.js';
import { type CommandSpec, CREATE, DEBUG, EXIT, FORMAT, listOf, ROOT_ARG, SILENT, VERBOSE } from '../spec.js';

export const remove: CommandSpec = {
  name: 'delete',
  summary: 'Delete queues and all their messages',
  help: 'A queue whose folder holds files that ddmq did not write is not deleted (nothing of it is).',
  args: [ROOT_ARG, { key: 'queue', description: 'comma-separated names of the queues to delete', required: true, list: true }],
  options: [CREATE, FORMAT(['plain', 'json', 'yaml'], 'plain'), SILENT, VERBOSE, DEBUG],
  async run(input, ctx) {
    const names = listOf(input.queue).map(checkQueueName);
    const broker = await openBroker(input, ctx);
    const rows = [];
    for (const queue of names) {
      await broker.deleteQueue(queue);
      rows.push({ queue, deleted: true });
    }
    if (!input.s) await emit(ctx, String(input.format), rows, (r) => `deleted queue ${r.queue}`);
    return EXIT.OK;
  },
};
