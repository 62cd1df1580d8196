/**
 * Builds the library, twice: ES modules into dist/ and CommonJS into dist/cjs/ (with a
 * package.json saying so, which makes Node load its .js as CommonJS and TypeScript read
 * its .d.ts as CommonJS declarations), so that both `import` and `require('ddmq')` work
 * on every Node 20 (require() of ES modules is not there before 20.19).
 *
 * dist/ is emptied first: it is what `npm pack` ships, and a file left by an older
 * build (a module since removed) must not travel with it.
 *
 * Next to it, dist/lib.inputs.json lists the sources, the tsconfigs and this script with
 * their SHA-256, as scripts/bundle-cli.mjs does for the command line, so that the tests
 * can refuse a stale build (test/helpers.ts).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');
const DIST = join(REPO, 'dist');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

fs.rmSync(DIST, { recursive: true, force: true });
for (const project of ['tsconfig.build.json', 'tsconfig.cjs.json']) {
  const r = spawnSync(process.execPath, [tsc, '-p', project], { cwd: REPO, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
fs.writeFileSync(join(DIST, 'cjs', 'package.json'), `${JSON.stringify({ type: 'commonjs' })}\n`);

const sources = (dir) =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : [join(dir, e.name)]));
const inputs = Object.fromEntries(
  [...sources(join(REPO, 'src')).filter((p) => p.endsWith('.ts')).map((p) => relative(REPO, p)), 'tsconfig.json', 'tsconfig.build.json', 'tsconfig.cjs.json', 'scripts/build-lib.mjs']
    .sort()
    .map((path) => [path, createHash('sha256').update(fs.readFileSync(join(REPO, path))).digest('hex')]),
);
fs.writeFileSync(join(DIST, 'lib.inputs.json'), `${JSON.stringify({ inputs }, null, 2)}\n`);
