import { join } from 'node:path';
import { type CommandSpec, REPORT_OPTIONS, ROOT_ARG, SKIP_CLEANING_COMPAT } from '../spec.js';
import { forEachMessage, MSG_FILES_ARG } from './each-message.js';
import { nackRow, nackText } from './nack.js';

export const ack: CommandSpec = {
  name: 'ack',
  summary: 'Acknowledge consumed messages (delete them)',
  help: 'Exit code 5 if a message is no longer in flight (its lease ran out and it was requeued, or it was acked already).',
  args: [ROOT_ARG, { key: 'queue', description: 'the queue the messages are in', required: true }, MSG_FILES_ARG],
  options: [
    { key: 'requeue', flags: '-r, --requeue', description: 'requeue the messages instead (as nack -r)', type: 'boolean' },
    SKIP_CLEANING_COMPAT,
    ...REPORT_OPTIONS,
  ],
  run: (input, ctx) =>
    forEachMessage(
      input,
      ctx,
      ['in-flight'],
      async (broker, queue, name) => {
        if (input.requeue) return nackRow(queue, name, await broker.nack(queue, name, { requeue: true }));
        await broker.ack(queue, name);
        return { queue, filename: name, action: 'acked', path: join(broker.root, queue, 'work', name) };
      },
      (r) => (r.action === 'acked' ? `acked ${r.path}` : nackText(r)),
    ),
};
