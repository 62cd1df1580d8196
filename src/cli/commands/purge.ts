import { type CommandSpec, CREATE, DEBUG, FORMAT, ROOT_ARG, SILENT, VERBOSE } from '../spec.js';
import { forEachQueue } from './each-queue.js';

export const purge: CommandSpec = {
  name: 'purge',
  summary: 'Delete all messages of queues, ready and in flight (the queues stay)',
  args: [ROOT_ARG, { key: 'queue', description: 'comma-separated names of the queues to purge', required: true, list: true }],
  options: [CREATE, FORMAT(['plain', 'json', 'yaml'], 'plain'), SILENT, VERBOSE, DEBUG],
  run: (input, ctx) =>
    forEachQueue(
      input,
      ctx,
      async (broker, queue) => {
        const r = await broker.purge(queue);
        return { queue, ready: r.ready, in_flight: r.inFlight };
      },
      (r) => `purged ${r.queue} (${r.ready} ready, ${r.in_flight} in flight)`,
    ),
};
