import { type CommandSpec, REPORT_OPTIONS, ROOT_ARG, SKIP_CLEANING_COMPAT } from '../spec.js';
import { forEachMessage, MSG_FILES_ARG } from './each-message.js';

export const delMsg: CommandSpec = {
  name: 'del_msg',
  summary: 'Delete messages, ready or in flight, by file name',
  help: 'Names are bare file names (PRIO.QNUM.ddmqID or EXPIRY.PRIO.QNUM.ddmqID); paths are refused.',
  args: [ROOT_ARG, { key: 'queue', description: 'the queue the messages are in', required: true }, MSG_FILES_ARG],
  options: [SKIP_CLEANING_COMPAT, ...REPORT_OPTIONS],
  run: (input, ctx) =>
    forEachMessage(
      input,
      ctx,
      ['ready', 'in-flight'],
      async (broker, queue, name) => ({ queue, filename: name, path: await broker.deleteMessage(queue, name) }),
      (r) => `deleted ${r.path}`,
    ),
};
