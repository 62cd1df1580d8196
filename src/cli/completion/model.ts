/**
 * What shell completion needs to know of each command, read from the command table
 * (the one commander and `ddmq json` use), so that a command or option added there is
 * completed without another list to keep in step.
 */
import type { ArgSpec, CommandSpec, OptionSpec } from '../spec.js';

/** What a word is completed with: nothing, fixed values, a folder, a file, queues of ROOT (one, or a comma-separated list), a command to run. */
export type WordKind = 'none' | 'choices' | 'dir' | 'file' | 'queue' | 'queues' | 'command';

export interface CompletedOption {
  short?: string;
  long?: string;
  description: string;
  /** The value's name (as in "<n>"), if the option takes one. */
  value?: string;
  kind: WordKind;
  choices: readonly string[];
}

export interface CompletedCommand {
  name: string;
  summary: string;
  options: CompletedOption[];
  /** Every spelling that takes a value, hidden aliases included: to skip that value when counting arguments. */
  valued: string[];
  args: { key: string; kind: WordKind; choices: readonly string[] }[];
}

export function completionModel(commands: readonly CommandSpec[]): CompletedCommand[] {
  return commands.map((c) => {
    const options = [...c.options.map(optionOf), HELP];
    const valued = options.filter((o) => o.value !== undefined).flatMap((o) => [o.short, o.long].filter((f): f is string => f !== undefined));
    for (const o of c.options) if (o.hiddenAlias && o.type !== 'boolean') valued.push(o.hiddenAlias);
    return { name: c.name, summary: c.summary, options, valued, args: c.args.map((a) => ({ key: a.key, kind: argKind(a), choices: a.choices ?? [] })) };
  });
}

/** commander adds -h, --help to every command. */
const HELP: CompletedOption = { short: '-h', long: '--help', description: 'display help for command', kind: 'none', choices: [] };

/** Splits commander flags: "-p, --priority <n>" → -p, --priority, n. */
export function parseFlags(flags: string): { short?: string; long?: string; value?: string } {
  const out: { short?: string; long?: string; value?: string } = {};
  for (const part of flags.split(/[ ,|]+/)) {
    if (/^--[\w-]+$/.test(part)) out.long = part;
    else if (/^-\w$/.test(part)) out.short = part;
    else if (/^[<[].*[>\]]$/.test(part)) out.value = part.slice(1, -1).replace(/\.\.\.$/, '');
  }
  return out;
}

function optionOf(o: OptionSpec): CompletedOption {
  const { short, long, value } = parseFlags(o.flags);
  let kind: WordKind = 'none';
  if (o.choices) kind = 'choices';
  else if (value === 'file') kind = 'file';
  else if (value === 'dir') kind = 'dir';
  else if (value === 'queue') kind = 'queue';
  return { ...(short && { short }), ...(long && { long }), ...(value !== undefined && { value }), description: o.description, kind, choices: o.choices ?? [] };
}

function argKind(a: ArgSpec): WordKind {
  if (a.choices) return 'choices';
  if (a.variadic) return 'command';
  if (a.key === 'root') return 'dir';
  if (a.key === 'queue') return a.list ? 'queues' : 'queue';
  return 'none';
}
