import { DdmqError, isDdmqError } from '../../format/errors.js';
import { checkMessageFileName, checkQueueName, type MessageNameKind } from '../../format/names.js';
import type { Broker } from '../../store/broker.js';
import { openBroker } from '../open.js';
import { emit, type Row } from '../output.js';
import { EXIT, type Input, listOf, type RunContext } from '../spec.js';

/**
 * Runs `act` on each message file named in input.msg_files. Every name is checked
 * before any file is touched; a message that is not there is reported on stderr and
 * the others still go ahead (exit code 5 at the end).
 */
export async function forEachMessage(
  input: Input,
  ctx: RunContext,
  kinds: readonly MessageNameKind[],
  act: (broker: Broker, queue: string, name: string) => Promise<Row>,
  plain: (row: Row) => string,
): Promise<number> {
  const queue = checkQueueName(input.queue);
  const names = listOf(input.msg_files);
  if (names.length === 0) throw new DdmqError('INVALID_ARGUMENT', 'no message file names given');
  for (const name of names) checkMessageFileName(name, kinds);
  const broker = await openBroker(input, ctx);
  const rows: Row[] = [];
  let failed = 0;
  for (const name of names) {
    try {
      rows.push(await act(broker, queue, name));
    } catch (err) {
      if (!isDdmqError(err, 'NOT_IN_FLIGHT') && !isDdmqError(err, 'MESSAGE_NOT_FOUND')) throw err;
      ctx.err(`ddmq: error: ${err.message}`);
      failed++;
    }
  }
  if (!input.s) await emit(ctx, String(input.format), rows, plain);
  return failed > 0 ? EXIT.NOT_FOUND : EXIT.OK;
}

export const MSG_FILES_ARG = {
  key: 'msg_files',
  description: 'comma-separated message file names, as consume printed them',
  required: true,
  list: true,
};
