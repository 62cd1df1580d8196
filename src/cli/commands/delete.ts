import { type CommandSpec, CREATE, REPORT_OPTIONS, ROOT_ARG } from '../spec.js';
import { forEachQueue } from './each-queue.js';

export const remove: CommandSpec = {
  name: 'delete',
  summary: 'Delete queues and all their messages',
  help:
    'A queue whose folder holds files that ddmq did not write, or a link, is not deleted (nothing of it is).\n' +
    "A folder whose ddmq.yaml is gone (a delete, ours or the original tool's, that stopped halfway) but\n" +
    "that holds only ddmq's own files and folders is deleted too.",
  args: [ROOT_ARG, { key: 'queue', description: 'comma-separated names of the queues to delete', required: true, list: true }],
  options: [CREATE, ...REPORT_OPTIONS],
  run: (input, ctx) =>
    forEachQueue(
      input,
      ctx,
      async (broker, queue) => {
        await broker.deleteQueue(queue);
        return { queue, deleted: true };
      },
      (r) => `deleted queue ${r.queue}`,
    ),
};
