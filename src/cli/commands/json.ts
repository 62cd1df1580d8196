import { DdmqError } from '../../format/errors.js';
import { describe } from '../../format/names.js';
import { type ArgSpec, type CommandSpec, type Input, type OptionSpec } from '../spec.js';

const COMMAND_KEYS = ['cmd', 'command'];

/**
 * `ddmq json '{"cmd": "publish", "root": "/tmp/q", "queue": "tasks", "message": "hi"}'`:
 * runs a command given as a JSON object. The command is looked up in a table; every
 * other key must be one of that command's arguments or options (by long name, as in
 * its --help) with a value of the right type.
 */
export function jsonCommand(commands: () => readonly CommandSpec[]): CommandSpec {
  return {
    name: 'json',
    summary: 'Run a command given as a JSON object',
    help:
      'The command goes under "cmd" (or "command"); the other keys are its arguments and options by\n' +
      'their long names (root, queue, message, msg_files, priority, timeout, requeue, requeue_limit,\n' +
      'requeue_prio, skip_cleaning, n, format, f, s, v, d, ...). Lists may be arrays or comma-separated.\n' +
      `Example: ddmq json '{"cmd": "publish", "root": "/tmp/ddmq", "queue": "tasks", "message": {"file": "a.txt"}, "priority": 5}'`,
    args: [{ key: 'json_payload', description: 'the JSON object, in single quotes', required: true }],
    options: [],
    async run(input, ctx) {
      const text = String(input.json_payload);
      const payload = parsePayload(text);
      const raw = rawValues(text);
      const commandKeys = COMMAND_KEYS.filter((k) => raw.has(k));
      if (commandKeys.length > 1) {
        throw new DdmqError('INVALID_ARGUMENT', `json: give the command once, under "cmd" or "command", not both (${commandKeys.map((k) => `${k}: ${raw.get(k)}`).join(', ')})`);
      }
      const name = COMMAND_KEYS.map((k) => payload[k]).find((v) => v !== undefined);
      const table = commands().filter((c) => c.name !== 'json');
      const spec = table.find((c) => c.name === name);
      if (spec === undefined) {
        throw new DdmqError(
          'INVALID_ARGUMENT',
          `json: ${name === undefined ? 'no "cmd" key' : `unknown command ${JSON.stringify(name)}`}; commands: ${table.map((c) => c.name).join(', ')}`,
        );
      }
      return spec.run(inputFromJson(spec, payload, raw), ctx);
    },
  };
}

/**
 * The top-level keys of a JSON object text, with each value's text as written. A key
 * given twice is refused: JSON.parse would keep the last one silently, and a command
 * must run as it reads, not as one of its readings. The text has already parsed, so
 * this walk only needs to find where each value ends.
 */
export function rawValues(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let i = text.indexOf('{') + 1;
  const skipSpace = () => {
    while (i < text.length && ' \t\r\n'.includes(text[i]!)) i++;
  };
  const endOfString = (start: number) => {
    let j = start + 1;
    while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
    return j + 1;
  };
  for (;;) {
    skipSpace();
    if (text[i] !== '"') return out; // "}": the end
    const keyEnd = endOfString(i);
    const key = JSON.parse(text.slice(i, keyEnd)) as string;
    i = keyEnd;
    skipSpace();
    i++; // ':'
    skipSpace();
    const start = i;
    let depth = 0;
    while (i < text.length) {
      const c = text[i]!;
      if (c === '"') {
        i = endOfString(i);
        continue;
      }
      if (c === '{' || c === '[') depth++;
      else if (c === '}' || c === ']') {
        if (depth === 0) break;
        depth--;
      } else if (c === ',' && depth === 0) break;
      i++;
    }
    if (out.has(key)) {
      throw new DdmqError('INVALID_ARGUMENT', `json: the key ${JSON.stringify(key)} is given more than once; give each key once`);
    }
    out.set(key, text.slice(start, i).trim());
    if (text[i] === ',') i++;
  }
}

function parsePayload(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new DdmqError('INVALID_ARGUMENT', `json: the argument is not valid JSON (${(err as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new DdmqError('INVALID_ARGUMENT', 'json: the argument must be a JSON object like {"cmd": "view", "root": "/tmp/ddmq"}');
  }
  return value as Record<string, unknown>;
}

/** Checks each key of the payload against the command's description and fills in defaults. */
export function inputFromJson(spec: CommandSpec, payload: Record<string, unknown>, raw = new Map<string, string>()): Input {
  const input: Input = {};
  const args = new Map(spec.args.map((a) => [a.key, a]));
  const options = new Map(spec.options.map((o) => [o.key, o]));
  for (const [key, value] of Object.entries(payload)) {
    if (COMMAND_KEYS.includes(key)) continue;
    const arg = args.get(key);
    const option = options.get(key);
    if (arg) input[key] = checkArg(spec.name, arg, value, raw.get(key));
    else if (option) input[key] = checkOption(spec.name, option, value, raw.get(key));
    else {
      const known = [...args.keys(), ...options.keys()].join(', ');
      throw new DdmqError('INVALID_ARGUMENT', `json: unknown key ${JSON.stringify(key)} for ${spec.name}; its keys are: ${known}`);
    }
  }
  for (const arg of spec.args) {
    if (arg.required && input[arg.key] === undefined) {
      throw new DdmqError('INVALID_ARGUMENT', `json: ${spec.name} needs the key "${arg.key}" (${arg.description})`);
    }
  }
  for (const option of spec.options) if (input[option.key] === undefined && option.default !== undefined) input[option.key] = option.default;
  return input;
}

function checkArg(command: string, arg: ArgSpec, value: unknown, given?: string): unknown {
  if (arg.anyJson) return value;
  if (arg.variadic) {
    if (Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === 'string')) return value;
    throw wrongType(command, arg.key, value, 'a non-empty array of strings', given);
  }
  if (typeof value === 'string') {
    if (arg.choices && !arg.choices.includes(value)) throw wrongType(command, arg.key, value, `one of ${arg.choices.join(', ')}`, given);
    return value;
  }
  if (arg.list && Array.isArray(value) && value.every((v) => typeof v === 'string')) return value;
  throw wrongType(command, arg.key, value, arg.list ? 'a string or an array of strings' : 'a string', given);
}

function checkOption(command: string, option: OptionSpec, value: unknown, given?: string): unknown {
  switch (option.type) {
    case 'boolean':
      if (typeof value === 'boolean') return value;
      throw wrongType(command, option.key, value, 'true or false', given);
    case 'int':
      if (Number.isSafeInteger(value)) return value;
      throw wrongType(command, option.key, value, 'a whole number', given);
    case 'string':
      if (typeof value === 'string' && (!option.choices || option.choices.includes(value))) return value;
      throw wrongType(command, option.key, value, option.choices ? `one of ${option.choices.join(', ')}` : 'a string', given);
    case 'strings':
      if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value;
      throw wrongType(command, option.key, value, 'an array of strings', given);
  }
}

/** `given`: the value's text as written, so that 1e400 is not shown as the Infinity it reads as. */
function wrongType(command: string, key: string, value: unknown, expected: string, given?: string): DdmqError {
  const shown = given !== undefined && given.length <= 80 ? given : describe(value);
  return new DdmqError('INVALID_ARGUMENT', `json: ${command}: "${key}" must be ${expected}, got ${shown}`);
}
