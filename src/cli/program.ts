/**
 * The whole command line: builds a commander program from the command descriptions, runs
 * the one asked for, and turns errors into a message on stderr and an exit code. main.ts
 * loads it for every line the hot commands' own parser (hot.ts) does not take.
 */
import { Argument, Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { VERSION } from '../version.js';
import { COMMANDS } from './commands/index.js';
import { EXAMPLES, EXIT_CODES } from './help-text.js';
import { reportError } from './report.js';
import { type CommandSpec, EXIT, type Input, parseIntArg, type RunContext } from './spec.js';

/** Runs one command line; `commands` is there for tests that compare parsers (test/cli-hot-args.test.ts). */
export async function main(argv: string[], ctx: RunContext, commands: readonly CommandSpec[] = COMMANDS): Promise<number> {
  let exitCode: number = EXIT.OK;
  let debug = false;
  const program = new Command('ddmq')
    .description('Dead Drop Messaging Queue: a serverless, file-based message queue')
    .usage('<command> [options] <root> ...')
    .version(`ddmq version ${VERSION}`, '-v, --version', 'print the version')
    .enablePositionalOptions()
    .showHelpAfterError('(run with -h for help)')
    .addHelpText('after', `\nExit codes:\n${EXIT_CODES}\n\nExamples:\n${EXAMPLES}`)
    .configureOutput({ writeOut: (s) => ctx.out(s.trimEnd()), writeErr: (s) => ctx.err(s.trimEnd()) })
    .exitOverride();

  for (const spec of commands) {
    const cmd = program.command(spec.name).description(spec.summary).exitOverride();
    cmd.configureOutput({ writeOut: (s) => ctx.out(s.trimEnd()), writeErr: (s) => ctx.err(s.trimEnd()) });
    cmd.showHelpAfterError(`(run "ddmq ${spec.name} -h" for help)`);
    if (spec.help) cmd.addHelpText('after', `\n${spec.help}`);
    for (const arg of spec.args) {
      const name = arg.variadic ? `${arg.key}...` : arg.key;
      const argument = new Argument(arg.required ? `<${name}>` : `[${name}]`, arg.description);
      if (arg.choices) argument.choices(arg.choices);
      cmd.addArgument(argument);
    }
    for (const o of spec.options) addOption(cmd, o.flags, o.description, o.type, o.choices, o.default);
    for (const o of spec.options) {
      if (o.hiddenAlias) addOption(cmd, o.hiddenAlias + (o.type === 'int' ? ' <n>' : ''), o.description, o.type, undefined, undefined, o.key, true);
    }
    cmd.action(async (...params: unknown[]) => {
      const input = toInput(spec, params, cmd.opts());
      debug = Boolean(input.d);
      exitCode = await spec.run(input, ctx);
    });
  }

  try {
    if (argv.length === 0) {
      program.outputHelp({ error: true });
      return EXIT.USAGE;
    }
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (err) {
    return report(err, ctx, debug || argv.includes('-d'));
  }
}

function addOption(
  cmd: Command,
  flags: string,
  description: string,
  type: string,
  choices: readonly string[] | undefined,
  fallback: unknown,
  attribute?: string,
  hidden = false,
): void {
  const option = new Option(flags, description);
  if (type === 'int') {
    option.argParser((value: string) => {
      try {
        return parseIntArg(value, option.long ?? option.short ?? 'value');
      } catch (err) {
        throw new InvalidArgumentError((err as Error).message);
      }
    });
  }
  if (choices) option.choices(choices);
  if (fallback !== undefined) option.default(fallback);
  if (attribute) option.attributeName = () => attribute;
  if (hidden) option.hideHelp();
  cmd.addOption(option);
}

/** Commander's action parameters and options, as one object keyed by the spec's keys. */
function toInput(spec: CommandSpec, params: unknown[], opts: Record<string, unknown>): Input {
  const input: Input = {};
  spec.args.forEach((arg, i) => {
    if (params[i] !== undefined) input[arg.key] = params[i];
  });
  for (const o of spec.options) {
    if (o.flags.includes('--no-')) continue; // set below
    const attr = attributeOf(o.flags);
    const value = opts[attr] ?? opts[o.key];
    if (value !== undefined) input[o.key] = value;
  }
  // commander's --no-requeue sets "requeue" to false; of -r and --no-requeue the last one wins.
  if (opts.requeue === false) input.requeue = false;
  return input;
}

/** The attribute commander stores a flag's value under: "--requeue_limit <n>" → requeue_limit. */
function attributeOf(flags: string): string {
  const long = /--([\w-]+)/.exec(flags)?.[1];
  if (long === undefined) return /-(\w)/.exec(flags)![1]!;
  const name = long.startsWith('no-') ? long.slice(3) : long;
  return name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

function report(err: unknown, ctx: RunContext, debug: boolean): number {
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') {
      return EXIT.OK;
    }
    return EXIT.USAGE; // commander has printed what was wrong
  }
  return reportError(err, ctx, debug);
}
