import { type CommandSpec, CREATE, REPORT_OPTIONS, ROOT_ARG } from '../spec.js';
import { forEachQueue } from './each-queue.js';

export const purge: CommandSpec = {
  name: 'purge',
  summary: 'Delete all messages of queues, ready, delayed and in flight (the queues stay)',
  args: [ROOT_ARG, { key: 'queue', description: 'comma-separated names of the queues to purge', required: true, list: true }],
  options: [CREATE, ...REPORT_OPTIONS],
  run: (input, ctx) =>
    forEachQueue(
      input,
      ctx,
      async (broker, queue) => {
        const r = await broker.purge(queue);
        return { queue, ready: r.ready, delayed: r.delayed, in_flight: r.inFlight };
      },
      (r) => `purged ${r.queue} (${r.ready} ready, ${r.delayed} delayed, ${r.in_flight} in flight)`,
    ),
};
