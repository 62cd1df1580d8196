import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('..', import.meta.url));
/** The command as users get it: package.json's bin, the bundle of scripts/bundle-cli.mjs. */
export const CLI = join(REPO, 'dist', 'cli', 'ddmq.cjs');
export const DIST = join(REPO, 'dist', 'index.js');

/** What each build records of its inputs: scripts/build-lib.mjs and scripts/bundle-cli.mjs. */
export const BUILD_RECORDS = [join(REPO, 'dist', 'lib.inputs.json'), join(REPO, 'dist', 'cli', 'ddmq.inputs.json')];

/**
 * The inputs a build recorded (path relative to the repository: SHA-256) that are not as
 * they are now: changed or gone, named with the record's path when it is itself missing.
 */
export function staleInputs(record: string): string[] {
  if (!fs.existsSync(record)) return [record];
  const { inputs } = JSON.parse(fs.readFileSync(record, 'utf8')) as { inputs: Record<string, string> };
  return Object.entries(inputs)
    .filter(([path, sha256]) => !fs.existsSync(join(REPO, path)) || createHash('sha256').update(fs.readFileSync(join(REPO, path))).digest('hex') !== sha256)
    .map(([path]) => path);
}

/** Sources under src/ that the library's build did not see (added since). */
function unbuiltSources(): string[] {
  const record = BUILD_RECORDS[0]!;
  if (!fs.existsSync(record)) return [];
  const { inputs } = JSON.parse(fs.readFileSync(record, 'utf8')) as { inputs: Record<string, string> };
  const walk = (dir: string): string[] =>
    fs.readdirSync(join(REPO, dir), { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(`${dir}/${e.name}`) : [`${dir}/${e.name}`]));
  return walk('src').filter((p) => p.endsWith('.ts') && !(p in inputs));
}

/**
 * The library tests run src/ (through tsx), but the command line, the fixtures and the
 * child processes run dist/: a build older than the sources would test code that is no
 * longer there, and pass or fail for the wrong reason. Every test file that uses dist
 * imports this module, so a stale build stops them all here, before anything runs.
 */
const stale = [...new Set([...BUILD_RECORDS.flatMap(staleInputs), ...unbuiltSources()])];
if (stale.length > 0) {
  throw new Error(`dist is stale: run npm run build (changed or added since it was built: ${stale.join(', ')})`);
}

/** A fresh folder for one test, removed when the file's tests end. */
export function tempDir(prefix = 'ddmq-test-'): string {
  const base = process.env.DDMQ_TEST_DIR ?? tmpdir();
  const dir = fs.mkdtempSync(join(base, prefix));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A clock the test moves by hand. */
export function manualClock(start = Date.now()) {
  let now = start;
  return {
    now: () => now,
    advance(ms: number) {
      now += ms;
    },
  };
}

const cjsFs = createRequire(import.meta.url)('node:fs') as typeof fs;

/**
 * Replaces one function of node:fs for the library too (ES module namespaces follow
 * after syncBuiltinESMExports), until the returned function is called.
 */
export function patchFs<K extends keyof typeof fs>(name: K, replacement: (original: (typeof fs)[K]) => (typeof fs)[K]): () => void {
  const original = cjsFs[name];
  (cjsFs as Record<string, unknown>)[name] = replacement(original);
  syncBuiltinESMExports();
  return () => {
    (cjsFs as Record<string, unknown>)[name] = original;
    syncBuiltinESMExports();
  };
}

export function errno(code: string, message = code): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${message}`), { code });
}

export function ls(dir: string): string[] {
  try {
    return fs.readdirSync(dir).sort();
  } catch {
    return [];
  }
}

export function setMtime(path: string, msAgo: number): void {
  const t = new Date(Date.now() - msAgo);
  fs.utimesSync(path, t, t);
}

export interface ChildResult {
  code: number | null;
  out: string;
  err: string;
}

/** Runs a command to its end, collecting its output. */
export function runChild(cmd: string, args: (string | number)[], options: { env?: Record<string, string>; cwd?: string } = {}): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const env = options.env === undefined ? undefined : { ...process.env, ...options.env };
    const p = spawn(cmd, args.map(String), { stdio: ['ignore', 'pipe', 'pipe'], env, cwd: options.cwd });
    let out = '';
    let err = '';
    p.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    p.stderr.setEncoding('utf8').on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, out, err }));
  });
}

/** Runs test/fixtures/worker.mjs with the arguments; resolves when it exits. */
export function worker(...args: (string | number)[]): Promise<ChildResult> {
  return runChild(process.execPath, [join(REPO, 'test', 'fixtures', 'worker.mjs'), ...args]);
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    });
  });

/**
 * Everything below a folder, for "nothing here changed": each entry with its mode, inode
 * and mtime (a file rewritten with the same bytes was still written), files with a hash
 * of their content, links with their targets. The folder itself is included.
 */
export function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    const st = fs.lstatSync(d);
    out[d] = `dir ${st.mode.toString(8)} ${st.ino} ${st.mtimeMs}`;
    for (const name of fs.readdirSync(d).sort()) {
      const p = join(d, name);
      const s = fs.lstatSync(p);
      if (s.isSymbolicLink()) out[p] = `-> ${fs.readlinkSync(p)}`;
      else if (s.isDirectory()) walk(p);
      else if (s.isFile()) out[p] = `${s.mode.toString(8)} ${s.ino} ${s.mtimeMs} ${createHash('sha1').update(fs.readFileSync(p)).digest('hex')}`;
      else out[p] = `special ${s.mode.toString(8)} ${s.ino}`;
    }
  };
  walk(dir);
  return out;
}

/** A network file-system rig of ../shared/netfs: one export mounted twice (A and B), and its server-side view. */
export interface Rig {
  name: string;
  a: string;
  b: string;
  /** The server's own view: only ever read (MooseFS: a third mount with every cache off). */
  truth: string;
  /** How long the rig's clients may show a stale listing (sshfs on: ~21 s). */
  cacheSeconds: number;
}

/**
 * The rigs described by DDMQ_NETFS (scripts/with-netfs.sh sets it); none without it, which
 * under CI is an error naming `what` must run there, never a silent skip.
 */
export function netfsRigs(what = 'the network file system tests'): Rig[] {
  const rigs = process.env.DDMQ_NETFS ? (JSON.parse(process.env.DDMQ_NETFS) as Rig[]) : [];
  if (rigs.length === 0 && process.env.CI) throw new Error(`CI must run ${what}: run them through scripts/with-netfs.sh`);
  return rigs;
}
