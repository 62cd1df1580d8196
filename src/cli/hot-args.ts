/**
 * One command's words parsed without commander, for the command lines scripts run once
 * per message: loading and setting up commander is a good part of a short call's cost.
 *
 * Only the plain shapes are taken: positional arguments, and options spelled as declared
 * ("-p 5", "--priority 5", "-f", a hidden alias), each value a word of its own that does
 * not start with "-". Anything else returns undefined, and commander parses the line with
 * its own rules and messages: help, "--opt=value", "-p5", grouped short flags, "--",
 * "--no-..." flags, a word that starts with "-", a value out of its choices or not a whole
 * number, a missing or an extra argument. Where this parser does take a line, it gives
 * the same input as commander (test/cli-hot-args.test.ts compares the two).
 */
import { type CommandSpec, type Input, type OptionSpec, parseIntArg } from './spec.js';

export function parseHotArgs(spec: CommandSpec, words: readonly string[]): Input | undefined {
  if (spec.args.some((a) => a.variadic)) return undefined;
  const byWord = new Map<string, { option: OptionSpec; takesValue: boolean }>();
  for (const o of spec.options) {
    if (o.flags.includes('--no-') || o.flags.includes('[')) continue; // commander's rules for these are its own
    const takesValue = o.flags.includes('<');
    for (const word of o.flags.split(/[ ,]+/)) if (word.startsWith('-')) byWord.set(word, { option: o, takesValue });
    // program.ts gives an alias a value only for an int option: the rest are flags
    if (o.hiddenAlias) byWord.set(o.hiddenAlias, { option: o, takesValue: o.type === 'int' });
  }
  const input: Input = {};
  const positional: string[] = [];
  for (const o of spec.options) if (o.default !== undefined) input[o.key] = o.default;
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (!word.startsWith('-')) {
      positional.push(word);
      continue;
    }
    const known = byWord.get(word);
    if (known === undefined) return undefined;
    const { option, takesValue } = known;
    if (!takesValue) {
      if (option.type !== 'boolean') return undefined;
      input[option.key] = true;
      continue;
    }
    const value = words[++i];
    if (value === undefined || value.startsWith('-')) return undefined;
    if (option.choices && !option.choices.includes(value)) return undefined;
    if (option.type === 'string') input[option.key] = value;
    else if (option.type === 'int') {
      try {
        input[option.key] = parseIntArg(value, option.key);
      } catch {
        return undefined; // commander says what is wrong, naming the option its way
      }
    } else return undefined;
  }
  if (positional.length > spec.args.length) return undefined;
  for (const [i, arg] of spec.args.entries()) {
    const value = positional[i];
    if (value !== undefined) input[arg.key] = value;
    else if (arg.required) return undefined;
  }
  return input;
}
