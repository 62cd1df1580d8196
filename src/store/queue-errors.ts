/** The errors a queue's calls give for a user's mistake (QUEUE_MISSING is in folders.ts). */
import { DdmqError } from '../format/errors.js';

export function notInFlight(queue: string, name: string): DdmqError {
  return new DdmqError(
    'NOT_IN_FLIGHT',
    `message ${queue}/work/${name} is not in flight: its lease ran out and it was requeued or taken, or it was acked already`,
    { path: name },
  );
}

export function invalid(what: string, value: unknown, expected: string): DdmqError {
  return new DdmqError('INVALID_ARGUMENT', `invalid ${what} ${JSON.stringify(value)}: expected ${expected}`);
}
