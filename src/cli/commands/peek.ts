import type { MessageState } from '../../store/queue.js';
import { DdmqError } from '../../format/errors.js';
import { checkQueueName } from '../../format/names.js';
import { openBroker } from '../open.js';
import { emit } from '../output.js';
import { type CommandSpec, DEBUG, EXIT, FORMAT, listOf, ROOT_ARG, VERBOSE } from '../spec.js';

const STATES: MessageState[] = ['ready', 'in-flight', 'delayed'];

export const peek: CommandSpec = {
  name: 'peek',
  summary: 'List messages without taking them: ready, in flight and delayed',
  help: 'Ready messages come in serving order, in-flight ones by lease expiry, delayed ones by due time.\nDead letters are the messages of a dead-letter queue: peek it.',
  args: [ROOT_ARG, { key: 'queue', description: 'the queue', required: true }],
  options: [
    { key: 'state', flags: '--state <states>', description: `only these (comma-separated): ${STATES.join(', ')}`, type: 'string' },
    { key: 'n', flags: '-n <n>', description: 'at most this many (default 100)', type: 'int' },
    { key: 'grep', flags: '--grep <text>', description: 'only messages whose text contains this', type: 'string' },
    FORMAT(['plain', 'json', 'yaml'], 'plain'),
    VERBOSE,
    DEBUG,
  ],
  async run(input, ctx) {
    const queue = checkQueueName(input.queue);
    const states = input.state === undefined ? undefined : listOf(input.state);
    for (const s of states ?? []) {
      if (!(STATES as string[]).includes(s)) throw new DdmqError('INVALID_ARGUMENT', `--state ${s}: expected ${STATES.join(', ')}`);
    }
    const broker = await openBroker(input, ctx);
    const found = await broker.peek(queue, { states: states as MessageState[] | undefined, limit: (input.n as number | undefined) ?? 100, match: input.grep as string | undefined });
    const rows = found.map((p) => ({ state: p.state, filename: p.filename, until: p.until, ...(p.message ? { message: p.message.toJSON() } : { error: p.error }) }));
    await emit(ctx, String(input.format), rows, (r) => {
      const text = r.message ? JSON.stringify((r.message as { message: unknown }).message) : `(unreadable: ${r.error})`;
      return `${String(r.state).padEnd(9)} ${r.filename}  ${text.length > 80 ? `${text.slice(0, 77)}...` : text}`;
    });
    return EXIT.OK;
  },
};
