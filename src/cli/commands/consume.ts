import { checkQueueName } from '../../format/names.js';
import { openBroker } from '../open.js';
import { emit, keyValueLines } from '../output.js';
import { type CommandSpec, CREATE, DEBUG, EXIT, FORMAT, leaseFromTimeout, ROOT_ARG, SKIP_CLEANING, VERBOSE } from '../spec.js';

export const consume: CommandSpec = {
  name: 'consume',
  summary: 'Consume messages: move them into work/ and print them',
  help:
    'Each message is printed with its "filename" (its name in work/), which ack and nack take.\n' +
    'Exit code 3 when the queue has no ready message (after --wait), so a shell loop can stop.\n' +
    'Waiting wakes at once for messages published on this host (file-change notification) and\n' +
    'polls about every second (0.8-1.2 s, at random) for those of other hosts on a network file\n' +
    'system; an idle poll costs one stat of the queue folder (see "Waiting" in the README).',
  args: [ROOT_ARG, { key: 'queue', description: 'the queue to consume from', required: true }],
  options: [
    CREATE,
    { key: 'n', flags: '-n <n>', description: 'how many messages to take at most (default 1)', type: 'int' },
    { key: 'timeout', flags: '-t, --timeout <seconds>', description: "lease for these messages, over the message's and the queue's", type: 'int' },
    { key: 'wait', flags: '-w, --wait <seconds>', description: 'wait up to this long for a message when the queue is empty (default 0)', type: 'int' },
    FORMAT(['json', 'plain', 'yaml'], 'json'),
    SKIP_CLEANING,
    VERBOSE,
    DEBUG,
  ],
  async run(input, ctx) {
    const queue = checkQueueName(input.queue);
    const broker = await openBroker(input, ctx);
    const messages = await broker.consume(queue, {
      n: (input.n as number | undefined) ?? 1,
      lease: leaseFromTimeout(input),
      skipCleaning: Boolean(input.skip_cleaning),
      wait: (input.wait as number | undefined) ?? 0,
    });
    broker.close();
    if (messages.length === 0) {
      ctx.err(`ddmq: no messages in ${queue}`);
      return EXIT.EMPTY;
    }
    let first = true;
    await emit(ctx, String(input.format), messages.map((m) => m.toJSON()), (r) => {
      const text = (first ? '' : '\n') + keyValueLines(r);
      first = false;
      return text;
    });
    return EXIT.OK;
  },
};
