import { brand } from './brand.js';

/** The codes of {@link DdmqError}: stable, for programs to tell errors apart. */
export type ErrorCode =
  /** The root folder does not exist (open it with `create` to make it). */
  | 'ROOT_MISSING'
  /** The root folder exists but has no `ddmq.yaml`. */
  | 'ROOT_UNINITIALISED'
  /** The queue folder or its `ddmq.yaml` does not exist. */
  | 'QUEUE_MISSING'
  /** A queue name or message file name does not match its pattern. */
  | 'INVALID_NAME'
  /** A settings file does not parse, or a setting has the wrong type or range. */
  | 'INVALID_SETTING'
  /** An argument of a call or command is out of range or of the wrong type. */
  | 'INVALID_ARGUMENT'
  /** A message file is not JSON or has keys of the wrong type. */
  | 'CORRUPT_MESSAGE'
  /** ack/nack/extend of a message whose lease was lost (it is no longer in `work/`). */
  | 'NOT_IN_FLIGHT'
  /** A named message file does not exist. */
  | 'MESSAGE_NOT_FOUND'
  /** A queue holds files that ddmq did not write, so deleting it would lose them. */
  | 'FOREIGN_FILES'
  /** A path in the tree is a symbolic link or not the kind of entry it must be; ddmq does not follow it. */
  | 'UNSAFE_PATH'
  /** The file system refused an operation; `osCode` holds the OS error code. */
  | 'IO';

/**
 * The one error class of ddmq. `code` is stable and meant for programs; `message` is
 * meant for people and names what was wrong and where.
 *
 * @example
 * ```ts
 * try {
 *   await broker.ack(msg);
 * } catch (err) {
 *   if (!isDdmqError(err, 'NOT_IN_FLIGHT')) throw err;
 *   // the lease ran out meanwhile: another consumer has the message now
 * }
 * ```
 */
export class DdmqError extends Error {
  /** What went wrong, for programs (see {@link ErrorCode}). */
  readonly code: ErrorCode;
  /** The file or folder concerned, when there is one. */
  readonly path: string | undefined;
  /** The OS error code (`ENOSPC`, `EACCES`, ...) for `IO` errors. */
  readonly osCode: string | undefined;

  /**
   * @param code - the error's code
   * @param message - for people: what was wrong, and where
   * @param options - the path concerned, the OS error code, the cause
   */
  constructor(
    code: ErrorCode,
    message: string,
    options: { path?: string; osCode?: string; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DdmqError';
    this.code = code;
    this.path = options.path;
    this.osCode = options.osCode;
  }
}

// An error from the other build (ES module or CommonJS) of ddmq is a DdmqError too.
brand(DdmqError, 'DdmqError');

/**
 * Whether `err` is a DdmqError (from either build of ddmq, ES module or CommonJS), and of
 * the given code if one is given.
 * @param err - any thrown value
 * @param code - the code it must have
 */
export function isDdmqError(err: unknown, code?: ErrorCode): err is DdmqError {
  return err instanceof DdmqError && (code === undefined || err.code === code);
}
