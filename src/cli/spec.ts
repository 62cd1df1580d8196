/**
 * A command is described once, as data: its arguments, its options and a run function
 * that takes them as one object keyed by their long names. The command line (through
 * commander) and the `json` command are two ways of filling that object; both check
 * every key's type against the same description, and nothing is ever evaluated.
 */
import { DdmqError } from '../format/errors.js';
import { MAX_SECONDS } from '../format/settings.js';

export type OptionType = 'boolean' | 'int' | 'string' | 'strings';

export interface ArgSpec {
  /** The key in the input object (and in `ddmq json`). */
  key: string;
  description: string;
  required: boolean;
  /** A comma-separated list on the command line; a string or an array of strings in JSON. */
  list?: boolean;
  /** In JSON, any JSON value is accepted (the message of publish). */
  anyJson?: boolean;
  /** Takes all remaining words (after "--"); an array of strings in JSON. */
  variadic?: boolean;
  /** The only values accepted. */
  choices?: readonly string[];
}

export interface OptionSpec {
  key: string;
  /** Commander flags, e.g. "-p, --priority <n>". */
  flags: string;
  description: string;
  type: OptionType;
  choices?: readonly string[];
  default?: unknown;
  /** Another spelling that commander accepts without listing it in --help. */
  hiddenAlias?: string;
}

export interface CommandSpec {
  name: string;
  summary: string;
  /** Text shown after the options in --help. */
  help?: string;
  args: ArgSpec[];
  options: OptionSpec[];
  run(input: Input, ctx: RunContext): Promise<number>;
}

export type Input = Record<string, unknown>;

export interface RunContext {
  out(text: string): void;
  err(text: string): void;
}

/** Exit codes: documented in the README and in `ddmq --help`. */
export const EXIT = {
  OK: 0,
  /** A bug in ddmq: please report it. */
  INTERNAL: 1,
  /** Bad arguments or input, a missing root or queue, invalid settings or names. */
  USAGE: 2,
  /** consume found no message. */
  EMPTY: 3,
  /** The file system refused (permissions, disk full, read-only, ...). */
  IO: 4,
  /** ack/nack/del_msg: the message is not in flight (lease lost) or does not exist. */
  NOT_FOUND: 5,
  /** work: one or more tasks failed (their messages were nacked). */
  TASKS_FAILED: 6,
  /** A command over several queues handled some of them and failed for others (named on stderr). */
  PARTIAL: 7,
  /** work: stopped by SIGHUP (128 + 1): the terminal hung up. */
  SIGHUP: 129,
  /** work: stopped by SIGINT (128 + 2). */
  SIGINT: 130,
  /** work: stopped by SIGTERM (128 + 15). */
  SIGTERM: 143,
  /** top: stopped by SIGQUIT (128 + 3). */
  SIGQUIT: 131,
} as const;

export const FORMAT = (choices: readonly string[], fallback: string): OptionSpec => ({
  key: 'format',
  flags: '--format <format>',
  description: `output format: ${choices.join(', ')}`,
  type: 'string',
  choices,
  default: fallback,
});
export const CREATE: OptionSpec = { key: 'f', flags: '-f', description: 'create the root (and queue) if missing', type: 'boolean' };
export const SILENT: OptionSpec = { key: 's', flags: '-s', description: 'silent: print nothing on success', type: 'boolean' };
export const VERBOSE: OptionSpec = { key: 'v', flags: '-v', description: 'verbose: say what is done, on stderr', type: 'boolean' };
export const DEBUG: OptionSpec = { key: 'd', flags: '-d', description: 'debug: say more, and show stack traces of internal errors', type: 'boolean' };
export const SKIP_CLEANING: OptionSpec = {
  key: 'skip_cleaning',
  flags: '-C, --skip_cleaning',
  description: 'do not clean expired messages first',
  type: 'boolean',
  hiddenAlias: '--skip-cleaning',
};
/** The original's ack/nack/del_msg take -C; they never clean, so here it only keeps old scripts working. */
export const SKIP_CLEANING_COMPAT: OptionSpec = {
  ...SKIP_CLEANING,
  description: 'accepted for compatibility with the original tool; this command never cleans',
};
/** The options most commands end with: plain, json or yaml output, -s, -v and -d. */
export const REPORT_OPTIONS: readonly OptionSpec[] = [FORMAT(['plain', 'json', 'yaml'], 'plain'), SILENT, VERBOSE, DEBUG];
export const ROOT_ARG: ArgSpec = { key: 'root', description: "the queues' root folder", required: true };

/** The exit code for an error of ddmq's (see EXIT). */
export function exitCodeOf(err: DdmqError): number {
  if (err.code === 'IO') return EXIT.IO;
  if (err.code === 'NOT_IN_FLIGHT' || err.code === 'MESSAGE_NOT_FOUND') return EXIT.NOT_FOUND;
  return EXIT.USAGE;
}

/**
 * The exit code of a command over `total` queues of which `failures` failed (each
 * already reported on stderr): 0 if none failed, the failure's own code if all did, and
 * PARTIAL (7) if some did.
 */
export function exitCodeOver(failures: DdmqError[], total: number): number {
  if (failures.length === 0) return EXIT.OK;
  return failures.length === total ? exitCodeOf(failures[0]!) : EXIT.PARTIAL;
}

/** Splits a list argument: "a,b" or ["a","b"]. */
export function listOf(value: unknown): string[] {
  if (Array.isArray(value)) return value.map(String);
  if (typeof value !== 'string') return [];
  return value.split(',').filter((s) => s.length > 0);
}

/** Parses a whole number given as text on the command line. */
export function parseIntArg(text: string, what: string): number {
  if (!/^-?\d+$/.test(text.trim())) {
    throw new DdmqError('INVALID_ARGUMENT', `${what} must be a whole number, got ${JSON.stringify(text)}`);
  }
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new DdmqError('INVALID_ARGUMENT', `${what} ${text} is too large`);
  return n;
}

/**
 * The lease of publish and consume from their -t/--timeout (the original tool's name for
 * it), checked here so that an error names the flag the user typed, not the library's
 * `lease` option.
 */
export function leaseFromTimeout(input: Input): number | undefined {
  const t = input.timeout;
  if (t === undefined) return undefined;
  if (!(typeof t === 'number' && Number.isSafeInteger(t) && t >= 1 && t <= MAX_SECONDS)) {
    throw new DdmqError('INVALID_ARGUMENT', `invalid --timeout ${JSON.stringify(t)}: expected a whole number of seconds, from 1 to ${MAX_SECONDS} (ten years)`);
  }
  return t;
}
