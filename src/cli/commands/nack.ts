import { DdmqError } from '../../format/errors.js';
import { type CommandSpec, REPORT_OPTIONS, ROOT_ARG, SKIP_CLEANING_COMPAT } from '../spec.js';
import { forEachMessage, MSG_FILES_ARG } from './each-message.js';

export const nack: CommandSpec = {
  name: 'nack',
  summary: 'Negatively acknowledge consumed messages (requeue or drop them)',
  help:
    "Without -r or --drop, each message is requeued if its own and its queue's requeue settings say so\n" +
    'and its requeue limit is not reached, and dropped otherwise. Exit code 5 if a message is no longer in flight.',
  args: [ROOT_ARG, { key: 'queue', description: 'the queue the messages are in', required: true }, MSG_FILES_ARG],
  options: [
    { key: 'requeue', flags: '-r, --requeue', description: 'requeue, whatever the settings and the limit say', type: 'boolean' },
    { key: 'drop', flags: '--drop', description: 'drop (delete), whatever the settings say', type: 'boolean' },
    SKIP_CLEANING_COMPAT,
    ...REPORT_OPTIONS,
  ],
  async run(input, ctx) {
    if (input.requeue && input.drop) throw new DdmqError('INVALID_ARGUMENT', '--requeue and --drop contradict each other');
    const force = input.requeue ? true : input.drop ? false : undefined;
    return forEachMessage(
      input,
      ctx,
      ['in-flight'],
      async (broker, queue, name) => {
        const r = await broker.nack(queue, name, { requeue: force });
        return { queue, filename: name, action: r.action, requeued_as: r.filename ?? null };
      },
      (r) => (r.action === 'requeued' ? `requeued ${r.queue}/work/${r.filename} as ${r.requeued_as}` : `dropped ${r.queue}/work/${r.filename}`),
    );
  },
};
