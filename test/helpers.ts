import * as fs from 'node:fs';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('..', import.meta.url));
export const CLI = join(REPO, 'dist', 'cli', 'main.js');
export const DIST = join(REPO, 'dist', 'index.js');

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
