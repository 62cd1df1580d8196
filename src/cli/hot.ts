/**
 * publish and consume, which scripts run once per message, parsed by hot-args.ts and run
 * without loading commander or the other commands. undefined: a line for program.ts.
 */
import { consume } from './commands/consume.js';
import { publish } from './commands/publish.js';
import { parseHotArgs } from './hot-args.js';
import { reportError } from './report.js';
import type { RunContext } from './spec.js';

export async function runHot(argv: readonly string[], ctx: RunContext): Promise<number | undefined> {
  const spec = argv[0] === publish.name ? publish : argv[0] === consume.name ? consume : undefined;
  if (spec === undefined) return undefined;
  const input = parseHotArgs(spec, argv.slice(1));
  if (input === undefined) return undefined;
  try {
    return await spec.run(input, ctx);
  } catch (err) {
    return reportError(err, ctx, Boolean(input.d) || argv.includes('-d'));
  }
}
