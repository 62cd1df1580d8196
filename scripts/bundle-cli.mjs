/**
 * Bundles the command line into one CommonJS file, dist/cli/ddmq.cjs, the package's bin.
 *
 * Why: a short `ddmq publish` spends most of its time starting, and Node resolves, reads
 * and compiles each of the ~40 files tsc writes, as ES modules, one by one. One CommonJS
 * file is read and compiled once. commander and yaml stay outside (required from
 * node_modules): a hot command never needs them, and compiling them would cost each call.
 * Identifiers are kept, so that the stack traces of `-d` still name our functions.
 *
 * Then the manual page, dist/ddmq.1 (package.json's "man"): what the new bundle's
 * `ddmq man` prints, made from the same command table.
 *
 * Next to it, ddmq.inputs.json lists the sources bundled, and this script, with their
 * SHA-256, so that a test can tell a stale bundle from a current one (test/cli-bundle.test.ts).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = join(REPO, 'dist', 'cli', 'ddmq.cjs');

const result = await build({
  absWorkingDir: REPO,
  entryPoints: ['src/cli/main.ts'],
  outfile: OUT,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  external: ['commander', 'yaml'],
  minifyWhitespace: true,
  minifySyntax: true,
  metafile: true,
  logLevel: 'warning',
});
fs.chmodSync(OUT, 0o755);
fs.writeFileSync(join(REPO, 'dist', 'ddmq.1'), execFileSync(process.execPath, [OUT, 'man'], { encoding: 'utf8' }));

const inputs = Object.fromEntries(
  [...Object.keys(result.metafile.inputs), 'scripts/bundle-cli.mjs']
    .sort()
    .map((path) => [path, createHash('sha256').update(fs.readFileSync(join(REPO, path))).digest('hex')]),
);
fs.writeFileSync(join(REPO, 'dist', 'cli', 'ddmq.inputs.json'), `${JSON.stringify({ inputs }, null, 2)}\n`);
