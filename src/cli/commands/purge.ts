import { checkQueueName } from '../../format/names.js';
import { openBroker } from '../open.js';
import { emit } from '../output.js';
import { type CommandSpec, CREATE, DEBUG, EXIT, FORMAT, listOf, ROOT_ARG, SILENT, VERBOSE } from '../spec.js';

export const purge: CommandSpec = {
  name: 'purge',
  summary: 'Delete all messages of queues, ready and in flight (the queues stay)',
  args: [ROOT_ARG, { key: 'queue', description: 'comma-separated names of the queues to purge', required: true, list: true }],
  options: [CREATE, FORMAT(['plain', 'json', 'yaml'], 'plain'), SILENT, VERBOSE, DEBUG],
  async run(input, ctx) {
    const names = listOf(input.queue).map(checkQueueName);
    const broker = await openBroker(input, ctx);
    const rows = [];
    for (const queue of names) {
      const r = await broker.purge(queue);
      rows.push({ queue, ready: r.ready, in_flight: r.inFlight });
    }
    if (!input.s) {
      await emit(ctx, String(input.format), rows, (r) => `purged ${r.queue} (${r.ready} ready, ${r.in_flight} in flight)`);
    }
    return EXIT.OK;
  },
};
