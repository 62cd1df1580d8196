import { DdmqError } from '../../format/errors.js';
import { checkQueueName } from '../../format/names.js';
import type { Broker } from '../../store/broker.js';
import { openBroker } from '../open.js';
import { emit, type Row } from '../output.js';
import { EXIT, type Input, listOf, type RunContext } from '../spec.js';

/**
 * Runs `act` on each queue named in input.queue (a comma-separated list). Every name is
 * checked before anything is touched; results are printed unless -s.
 */
export async function forEachQueue(
  input: Input,
  ctx: RunContext,
  act: (broker: Broker, queue: string) => Promise<Row>,
  plain: (row: Row) => string,
): Promise<number> {
  const names = listOf(input.queue).map(checkQueueName);
  if (names.length === 0) throw new DdmqError('INVALID_ARGUMENT', `no queue names given (${JSON.stringify(input.queue)})`);
  const broker = await openBroker(input, ctx);
  const rows: Row[] = [];
  for (const queue of names) rows.push(await act(broker, queue));
  if (!input.s) await emit(ctx, String(input.format), rows, plain);
  return EXIT.OK;
}
