import { DdmqError } from '../format/errors.js';
import { exitCodeOf, EXIT, type RunContext } from './spec.js';

/** An error of a command as a message on stderr, and its exit code (commander's own errors excepted: program.ts). */
export function reportError(err: unknown, ctx: RunContext, debug: boolean): number {
  if (err instanceof DdmqError) {
    ctx.err(`ddmq: error: ${err.message}`);
    if (debug && err.cause instanceof Error && err.cause.stack) ctx.err(err.cause.stack);
    return exitCodeOf(err);
  }
  ctx.err(`ddmq: internal error: ${(err as Error)?.message ?? String(err)}`);
  if (debug && err instanceof Error && err.stack) ctx.err(err.stack);
  else ctx.err('ddmq: run again with -d to see where it happened, and please report it');
  return EXIT.INTERNAL;
}
