import { DdmqError } from '../format/errors.js';
import { Broker } from '../store/broker.js';
import type { Input, RunContext } from './spec.js';

/** Opens the broker named by the input's root, with -f, -v and -d applied. */
export function openBroker(input: Input, ctx: RunContext): Promise<Broker> {
  const level = input.d ? 2 : input.v ? 1 : 0;
  // Node decodes arguments as UTF-8 and puts U+FFFD for invalid bytes: such a path would
  // name another folder than the one meant.
  if (String(input.root).includes('\uFFFD')) {
    throw new DdmqError('INVALID_ARGUMENT', `the root path ${JSON.stringify(input.root)} is not valid UTF-8`);
  }
  return Broker.open(String(input.root), {
    create: Boolean(input.f),
    onWarning: (w) => ctx.err(`ddmq: warning: ${w.message}`),
    log: level === 0 ? undefined : (lvl, text) => {
      if (lvl === 'info' || level >= 2) ctx.err(`ddmq: ${lvl}: ${text}`);
    },
  });
}
