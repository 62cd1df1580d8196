import { DdmqError, isDdmqError } from '../../format/errors.js';
import { checkQueueName } from '../../format/names.js';
import type { Broker } from '../../store/broker.js';
import { openBroker } from '../open.js';
import { emit, type Row } from '../output.js';
import { exitCodeOver, type Input, listOf, type RunContext } from '../spec.js';

/**
 * The queues named in input.queue for a command whose queue argument is optional: [] when
 * it is left out (every queue); a list that names none (",") is refused, not taken for all.
 */
export function optionalQueues(input: Input): string[] {
  const names = listOf(input.queue).map(checkQueueName);
  if (input.queue !== undefined && names.length === 0) {
    throw new DdmqError('INVALID_ARGUMENT', `no queue names in ${JSON.stringify(input.queue)} (leave the argument out for every queue)`);
  }
  return names;
}

/**
 * Runs `act` on each queue named in input.queue (a comma-separated list). Every name is
 * checked before anything is touched. A queue that fails is reported on stderr and the
 * others still go ahead; the exit code says whether all, some or none failed.
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
  const failures: DdmqError[] = [];
  for (const queue of names) {
    try {
      rows.push(await act(broker, queue));
    } catch (err) {
      if (!isQueueFailure(err)) throw err;
      reportFailure(ctx, err);
      failures.push(err);
    }
  }
  if (!input.s) await emit(ctx, String(input.format), rows, plain);
  return exitCodeOver(failures, names.length);
}

/** An error that concerns one queue, not the whole root (which ends the command). */
export function isQueueFailure(err: unknown): err is DdmqError {
  return isDdmqError(err) && err.code !== 'ROOT_MISSING' && err.code !== 'ROOT_UNINITIALISED';
}

export function reportFailure(ctx: RunContext, err: DdmqError): void {
  ctx.err(`ddmq: error: ${err.message}`);
}
