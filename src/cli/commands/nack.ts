import { DdmqError } from '../../format/errors.js';
import type { NackResult } from '../../store/queue.js';
import type { Row } from '../output.js';
import { type CommandSpec, REPORT_OPTIONS, ROOT_ARG, SKIP_CLEANING_COMPAT } from '../spec.js';
import { forEachMessage, MSG_FILES_ARG } from './each-message.js';

export const nack: CommandSpec = {
  name: 'nack',
  summary: 'Negatively acknowledge consumed messages (requeue or drop them)',
  help:
    "Without -r or --drop, each message is requeued if its own and its queue's requeue settings say so\n" +
    'and its requeue limit is not reached, after the retry backoff (retry_delay, retry_backoff,\n' +
    'retry_delay_max: it waits in delayed/ until then); otherwise it goes to the dead_letter queue if\n' +
    'one is set, and is dropped if not. -r requeues at once. Exit code 5 if a message is no longer in flight.',
  args: [ROOT_ARG, { key: 'queue', description: 'the queue the messages are in', required: true }, MSG_FILES_ARG],
  options: [
    { key: 'requeue', flags: '-r, --requeue', description: 'requeue at once, whatever the settings and the limit say', type: 'boolean' },
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
      async (broker, queue, name) => nackRow(queue, name, await broker.nack(queue, name, { requeue: force })),
      nackText,
    );
  },
};

/** The output row of a nack (or ack -r): what happened to the message, and where it went. */
export function nackRow(queue: string, filename: string, r: NackResult): Row {
  return {
    queue,
    filename,
    action: r.action,
    requeued_as: r.action === 'requeued' ? (r.filename ?? null) : null,
    ready_at: r.due ?? null,
    dead_lettered_as: r.action === 'dead-lettered' ? `${r.queue}/${r.filename}` : null,
  };
}

export function nackText(r: Row): string {
  const from = `${r.queue}/work/${r.filename}`;
  if (r.action === 'dead-lettered') return `dead-lettered ${from} to ${r.dead_lettered_as}`;
  if (r.action === 'dropped') return `dropped ${from}`;
  if (typeof r.ready_at !== 'number') return `requeued ${from} as ${r.requeued_as}`;
  const wait = Math.max(0, r.ready_at - Math.floor(Date.now() / 1000));
  return `requeued ${from} as ${r.requeued_as}, ready in ${wait} s (it waits in ${r.queue}/delayed/ until then)`;
}
