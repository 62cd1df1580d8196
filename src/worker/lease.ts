/**
 * Keeping one message's lease alive while its task runs.
 *
 * - The lease is renewed every third of its length (a 1 s lease every ~333 ms).
 * - A renewal that fails is tried again soon (100 ms, doubling, at most a third of the
 *   lease), until the lease has run out: transient errors of network file systems
 *   (ESTALE, EIO, EAGAIN, ...) usually pass within that time. The first failure of a run
 *   is reported through `onWarning`.
 * - The lease is lost, and `onLost` called exactly once, when the store says the message
 *   is no longer ours (NOT_IN_FLIGHT: a cleaner or another consumer took it; or its queue
 *   is gone), or when it could not be renewed before it ran out. Then nothing more is
 *   tried.
 */
import { DdmqError, isDdmqError } from '../format/errors.js';
import type { Message } from '../format/message.js';
import { parseInFlightName } from '../format/names.js';
import type { Broker } from '../store/broker.js';
import { brokerInternals } from '../store/internals.js';

/** OS codes after which a renewal is simply tried again. */
export const TRANSIENT_CODES: ReadonlySet<string> = new Set(['ESTALE', 'EIO', 'EAGAIN', 'EINTR', 'EBUSY', 'ETIMEDOUT', 'ENOTCONN']);

/** First delay before a failed renewal is tried again, in ms; it doubles with each failure. */
const RETRY_FIRST_MS = 100;

export interface LeaseKeeper {
  /** Whether the lease was lost (onLost was called). */
  readonly lost: boolean;
  /** Stops renewing; resolves once a renewal under way has finished (its loss still reported). */
  stop(): Promise<void>;
}

export interface LeaseHooks {
  /** The lease is lost: called once, with the error that showed it. */
  onLost(error: DdmqError): void;
  /** A renewal failed and will be tried again: called for the first failure of each run. */
  onWarning(error: DdmqError): void;
}

/** Whether an error is one a renewal should simply try again after. */
export function isTransient(err: unknown): boolean {
  return isDdmqError(err, 'IO') && err.osCode !== undefined && TRANSIENT_CODES.has(err.osCode);
}

/**
 * Renews `msg`'s lease to `seconds` every third of it until stopped or lost. The broker's
 * clock (`brokerInternals(broker).clock`) decides when the lease has run out: the end of its expiry second,
 * after which a cleaner on a host with the same time may take the message back.
 */
export function keepLease(broker: Broker, msg: Message, seconds: number, hooks: LeaseHooks): LeaseKeeper {
  const period = (seconds * 1000) / 3;
  let timer: NodeJS.Timeout | undefined;
  let pending: Promise<void> | undefined;
  let stopped = false;
  let lost = false;
  let failures = 0;

  // The expiry of the current in-flight name, as epoch ms on the broker's clock.
  const runsOutAt = (): number => {
    const file = parseInFlightName(msg.filename);
    return file === null ? brokerInternals(broker).clock.now() + seconds * 1000 : (file.expiry + 1) * 1000;
  };
  let deadline = runsOutAt();

  const lose = (error: DdmqError) => {
    if (lost) return;
    lost = true;
    clearTimeout(timer);
    hooks.onLost(error);
  };

  const schedule = (ms: number) => {
    if (stopped || lost) return;
    timer = setTimeout(() => {
      pending = renew();
    }, Math.max(0, ms));
  };

  const renew = async (): Promise<void> => {
    try {
      await broker.extend(msg, seconds);
      failures = 0;
      deadline = runsOutAt();
      schedule(period);
    } catch (err) {
      if (lost) return;
      if (isDdmqError(err, 'NOT_IN_FLIGHT') || isDdmqError(err, 'QUEUE_MISSING')) {
        lose(err);
        return;
      }
      const reason = err instanceof Error ? err.message : String(err);
      const left = deadline - brokerInternals(broker).clock.now();
      if (left <= 0) {
        lose(
          new DdmqError('NOT_IN_FLIGHT', `the lease of ${msg.queue}/${msg.id} ran out: it could not be renewed (${reason})`, {
            cause: err,
            osCode: isDdmqError(err) ? err.osCode : undefined,
          }),
        );
        return;
      }
      failures++;
      if (failures === 1) {
        hooks.onWarning(
          new DdmqError(
            isDdmqError(err) ? err.code : 'IO',
            `renewing the lease of ${msg.queue}/${msg.id} failed (${reason}); trying again until it runs out in ${Math.ceil(left / 1000)} s`,
            { cause: err, osCode: isDdmqError(err) ? err.osCode : undefined },
          ),
        );
      }
      // One last try at the deadline itself, if the backoff would pass it.
      schedule(Math.min(RETRY_FIRST_MS * 2 ** Math.min(failures - 1, 20), period, left));
    }
  };

  schedule(period);
  return {
    get lost() {
      return lost;
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await pending;
    },
  };
}
