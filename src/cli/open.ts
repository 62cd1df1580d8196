import { Broker } from '../store/broker.js';
import type { Input, RunContext } from './spec.js';

/** Opens the broker named by the input's root, with -f, -v and -d applied. */
export function openBroker(input: Input, ctx: RunContext): Promise<Broker> {
  const level = input.d ? 2 : input.v ? 1 : 0;
  return Broker.open(String(input.root), {
    create: Boolean(input.f),
    onWarning: (w) => ctx.err(`ddmq: warning: ${w.message}`),
    log: level === 0 ? undefined : (lvl, text) => {
      if (lvl === 'info' || level >= 2) ctx.err(`ddmq: ${lvl}: ${text}`);
    },
  });
}
