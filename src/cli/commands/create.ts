import { type CommandSpec, CREATE, REPORT_OPTIONS, ROOT_ARG } from '../spec.js';
import { forEachQueue } from './each-queue.js';

export const create: CommandSpec = {
  name: 'create',
  summary: 'Create queues',
  args: [ROOT_ARG, { key: 'queue', description: 'comma-separated names of the queues to create', required: true, list: true }],
  options: [CREATE, ...REPORT_OPTIONS],
  run: (input, ctx) =>
    forEachQueue(
      input,
      ctx,
      async (broker, queue) => ({ queue, created: await broker.createQueue(queue) }),
      (r) => (r.created ? `created queue ${r.queue}` : `queue ${r.queue} exists already`),
    ),
};
