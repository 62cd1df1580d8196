import { DdmqError } from '../../format/errors.js';
import { checkQueueName } from '../../format/names.js';
import { openBroker } from '../open.js';
import { emit } from '../output.js';
import { type CommandSpec, CREATE, DEBUG, EXIT, FORMAT, ROOT_ARG, SILENT, SKIP_CLEANING, VERBOSE } from '../spec.js';

export const publish: CommandSpec = {
  name: 'publish',
  summary: 'Publish a message to a queue',
  help: 'With --json-message, MESSAGE is parsed as a JSON value (object, array, number...) and stored as such.',
  args: [
    ROOT_ARG,
    { key: 'queue', description: 'the queue to publish to', required: true },
    { key: 'message', description: 'the message text', required: true, anyJson: true },
  ],
  options: [
    CREATE,
    { key: 'priority', flags: '-p, --priority <n>', description: 'priority, lower is served first (default: the priority setting, 999)', type: 'int' },
    { key: 'timeout', flags: '-t, --timeout <seconds>', description: "this message's lease once consumed (default: the message_timeout setting)", type: 'int' },
    { key: 'requeue', flags: '-r, --requeue', description: 'requeue on nack or expiry (default: the requeue setting)', type: 'boolean' },
    { key: 'no_requeue', flags: '--no-requeue', description: 'drop on nack or expiry instead (of -r and --no-requeue the last wins)', type: 'boolean' },
    { key: 'requeue_limit', flags: '-l, --requeue_limit <n>', description: 'how many times it may be requeued (default: unlimited)', type: 'int', hiddenAlias: '--requeue-limit' },
    { key: 'requeue_prio', flags: '--requeue_prio <n>', description: 'priority when requeued; implies -r (default: the requeue_prio setting)', type: 'int', hiddenAlias: '--requeue-prio' },
    { key: 'json_message', flags: '--json-message', description: 'parse MESSAGE as a JSON value', type: 'boolean' },
    { key: 'delay', flags: '--delay <seconds>', description: 'keep the message out of sight (in delayed/) this long', type: 'int' },
    SKIP_CLEANING,
    FORMAT(['plain', 'json', 'yaml'], 'plain'),
    SILENT,
    VERBOSE,
    DEBUG,
  ],
  async run(input, ctx) {
    const queue = checkQueueName(input.queue);
    let body = input.message;
    if (input.json_message && typeof body === 'string') {
      try {
        body = JSON.parse(body);
      } catch (err) {
        throw new DdmqError('INVALID_ARGUMENT', `--json-message: the message is not valid JSON (${(err as Error).message})`);
      }
    }
    if (input.requeue === true && input.no_requeue === true) {
      throw new DdmqError('INVALID_ARGUMENT', '"requeue" and "no_requeue" contradict each other');
    }
    const broker = await openBroker(input, ctx);
    // Requeue expired messages first, as the original does; the temp-file sweep is left to clean.
    if (!input.skip_cleaning && (await broker.queueExists(queue))) await broker.clean(queue, { temps: false });
    const msg = await broker.publish(queue, body, {
      priority: input.priority as number | undefined,
      timeout: input.timeout as number | undefined,
      requeue: input.requeue === true ? true : input.requeue === false || input.no_requeue === true ? false : undefined,
      requeuePrio: input.requeue_prio as number | undefined,
      requeueLimit: input.requeue_limit as number | undefined,
      delay: input.delay as number | undefined,
    });
    if (!input.s) await emit(ctx, String(input.format), [msg.toJSON()], (r) => `published ${queue}/${r.filename}`);
    return EXIT.OK;
  },
};
