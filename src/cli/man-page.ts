/**
 * The manual page, ddmq(1), in roff, made from the command table: every command with its
 * arguments, options and help text, so that a command added to the table is documented
 * here without another text to keep in step. `ddmq man` prints it; the build writes it to
 * dist/ddmq.1 (package.json's "man").
 */
import { VERSION } from '../version.js';
import { parseFlags } from './completion/model.js';
import { EXAMPLES, EXIT_CODES } from './help-text.js';
import type { CommandSpec, OptionSpec } from './spec.js';

/**
 * Text for roff: backslashes escaped, a hyphen that starts a word (an option) made a
 * minus so that it copies as "-", and a line that would read as a request kept as text.
 */
export function roff(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\\') out += '\\e';
    else if (c === '-' && (i === 0 || text[i - 1] === '-' || !/[\p{L}\p{N}]/u.test(text[i - 1]!))) out += '\\-';
    else out += c;
  }
  return out
    .split('\n')
    .map((line) => (/^[.']/.test(line) ? `\\&${line}` : line))
    .join('\n');
}

const bold = (s: string) => `\\fB${roff(s)}\\fR`;
const italic = (s: string) => `\\fI${roff(s)}\\fR`;

function synopsis(c: CommandSpec): string {
  const args = c.args.map((a) => {
    const name = italic(a.variadic ? `${a.key} ...` : a.key);
    if (a.variadic) return `\\-\\- ${name}`;
    return a.required ? name : `[${name}]`;
  });
  return [bold(`ddmq ${c.name}`), ...(c.options.length > 0 ? ['[\\fIoptions\\fR]'] : []), ...args].join(' ');
}

function optionTag(o: OptionSpec): string {
  const { short, long, value } = parseFlags(o.flags);
  const names = [short, long].filter((f): f is string => f !== undefined).map(bold).join(', ');
  return value === undefined ? names : `${names} ${italic(value)}`;
}

/** Help text: paragraphs at blank lines; a line starting with "Example" or "name: " starts a line of its own. */
function helpText(text: string): string[] {
  return text.split(/\n\s*\n/).flatMap((paragraph) => [
    '.PP',
    ...paragraph.split('\n').flatMap((line) => (/^(Example|In ddmq json|[\w-]+: )/.test(line) ? ['.br', roff(line)] : [roff(line)])),
  ]);
}

function commandSection(c: CommandSpec): string[] {
  const out = ['.SS ' + `"${c.name}"`, synopsis(c), '.PP', roff(`${c.summary}.`)];
  for (const a of c.args) out.push('.TP', italic(a.variadic ? `${a.key} ...` : a.key), roff(a.description + (a.choices ? ` (one of: ${a.choices.join(', ')})` : '')));
  for (const o of c.options) {
    const fallback = o.default !== undefined && o.default !== false ? `; default: ${String(o.default)}` : '';
    out.push('.TP', optionTag(o), roff(o.description) + roff(fallback));
  }
  if (c.help) out.push(...helpText(c.help));
  return out;
}

const preformatted = (text: string) => ['.PP', '.nf', ...text.split('\n').map((l) => roff(l.replace(/^ {2}/, ''))), '.fi'];

export function manPage(commands: readonly CommandSpec[]): string {
  return [
    `.TH DDMQ 1 "" "ddmq ${VERSION}" "User Commands"`,
    // No hyphenation: options, paths and settings are meant to be copied as printed.
    '.nh',
    '.SH NAME',
    'ddmq \\- a serverless, file\\-based message queue',
    '.SH SYNOPSIS',
    `${bold('ddmq')} ${italic('command')} [\\fIoptions\\fR] ${italic('root')} ...`,
    '.br',
    `${bold('ddmq')} [${bold('-h')}] [${bold('-v')}]`,
    '.SH DESCRIPTION',
    roff('ddmq is a message queue with no server. A queue is a folder under the root, and a message is a JSON file in it;'),
    roff('every client that touches the tree does its share of the housekeeping. The tree is the one of the original Python ddmq,'),
    roff('and both tools can work on one queue at the same time.'),
    '.PP',
    roff('Every command takes -h (help). Before the command, -h lists the commands and -v (--version) prints the version.'),
    '.SH COMMANDS',
    ...commands.flatMap(commandSection),
    '.SH "EXIT STATUS"',
    ...preformatted(EXIT_CODES),
    '.SH EXAMPLES',
    ...preformatted(EXAMPLES),
    '.SH "SEE ALSO"',
    roff('The README of the ddmq package, on the library, the tree, settings, guarantees and task farms.'),
    '',
  ].join('\n');
}
