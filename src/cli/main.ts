#!/usr/bin/env node
/**
 * The `ddmq` command. Scripts that call it once per message pay its start each time, so
 * publish and consume go first to a small parser of their own (hot.ts); every other line,
 * and any of theirs it does not take, to the commander program (program.ts), which is
 * loaded only then. Both turn errors into a message on stderr and an exit code.
 */
import type { RunContext } from './spec.js';

const ctx: RunContext = {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
};

// EPIPE on stdout (e.g. `ddmq view | head -1`) is not an error of ours.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

async function run(argv: string[]): Promise<number> {
  if (argv[0] === 'publish' || argv[0] === 'consume') {
    const { runHot } = await import('./hot.js');
    const code = await runHot(argv, ctx);
    if (code !== undefined) return code;
  }
  const { main } = await import('./program.js');
  return main(argv, ctx);
}

run(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
