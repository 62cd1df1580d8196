/**
 * Printing results. Machine formats are exact: json is one JSON object per line and
 * nothing else on stdout; yaml is one YAML document holding the list of results.
 * Warnings, logs and errors always go to stderr.
 */
import type { RunContext } from './spec.js';

export type Row = Record<string, unknown>;

/** Prints rows as the format asks; `plain` renders one row for people. */
export async function emit(
  ctx: RunContext,
  format: string,
  rows: Row[],
  plain: (row: Row) => string,
): Promise<void> {
  if (format === 'json') {
    for (const row of rows) ctx.out(JSON.stringify(row));
  } else if (format === 'yaml') {
    if (rows.length === 0) return;
    const { stringify } = await import('yaml');
    ctx.out(stringify(rows).trimEnd());
  } else {
    for (const row of rows) ctx.out(plain(row));
  }
}

/** An aligned text table with a header line. */
/**
 * A line for a terminal with the control characters of data from files written by others
 * (task records, presence files: hosts, errors) shown as \\xNN: an escape sequence in an
 * error must not move the cursor, clear the screen or retitle the window.
 */
export function printable(line: string): string {
  return line.replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const numeric = headers.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === 'number'));
  return cells
    .map((r) =>
      r
        .map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** The original tool's plain message view: one "key = value" line per key, sorted. */
export function keyValueLines(obj: Row): string {
  return Object.keys(obj)
    .sort()
    .map((k) => {
      const v = obj[k];
      return `${k} = ${typeof v === 'string' ? v : JSON.stringify(v)}`;
    })
    .join('\n');
}
