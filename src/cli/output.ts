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
