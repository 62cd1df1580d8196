// Counting file-system calls with strace, shared by bench/fsops.mjs and test/fsops.test.ts.
//
// Each phase runs in a child process (bench/fsops-child.mjs) under
//   strace -f -y -e trace=%file,%desc,getdents64 -o FILE
// in a fresh folder of its own. Only calls on a path or a descriptor under that folder are
// counted (strace -y prints each descriptor's path), and only between the child's two
// marker calls, so neither Node's start nor the phase's setup needs subtracting.
//
// What counts as a metadata operation: a call by path or on a folder, or one that asks
// for or changes a file's attributes: open, the stat family (stat, lstat, fstat, newfstatat,
// statx, access, readlink, statfs), readdir (getdents64), rename, unlink, mkdir, rmdir,
// link, symlink, utimes, chmod, chown, truncate, xattrs. Data calls (read, write and their
// vector forms, lseek, fsync, fdatasync, close) are counted apart, and so are the other
// calls on a descriptor (fcntl, ioctl, flock, inotify_add_watch ...).
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'fsops-child.mjs');

export const METADATA = new Set(
  ('open openat openat2 creat stat lstat fstat newfstatat fstatat64 statx access faccessat faccessat2 readlink readlinkat ' +
    'statfs fstatfs getdents getdents64 rename renameat renameat2 unlink unlinkat mkdir mkdirat rmdir link linkat symlink ' +
    'symlinkat utime utimes utimensat futimesat chmod fchmod fchmodat chown fchown fchownat lchown truncate ftruncate ' +
    'getxattr lgetxattr fgetxattr setxattr lsetxattr fsetxattr listxattr llistxattr flistxattr removexattr lremovexattr fremovexattr').split(' '),
);
export const DATA = new Set(
  'read write pread64 pwrite64 readv writev preadv pwritev preadv2 pwritev2 lseek fsync fdatasync sync_file_range syncfs close copy_file_range sendfile fallocate'.split(' '),
);
/** Calls whose only link to a file is their descriptor: a path in their data is not theirs. */
const BY_DESCRIPTOR = new Set('read write pread64 pwrite64 readv writev preadv pwritev preadv2 pwritev2'.split(' '));

/** The phases, in the order they are reported; unit: what a figure is per. */
export const PHASES = [
  { name: 'publish', label: 'publish (library, `publish` in a loop)', unit: 'message' },
  { name: 'publish-cli', label: 'publish (`ddmq publish`, one process a message)', unit: 'message' },
  { name: 'consume-ack', label: 'consume + ack (n=1 a consume)', unit: 'message' },
  { name: 'consume', label: 'consume only', unit: 'message' },
  { name: 'consume-nack', label: 'consume + nack (requeue)', unit: 'message' },
  { name: 'clean', label: 'clean (requeue an expired message)', unit: 'message' },
  { name: 'idle-consume', label: 'idle: `consume({ wait })` on an empty queue', unit: 'second' },
  { name: 'idle-work', label: 'idle: `work()` on an empty queue', unit: 'second' },
];

/**
 * Counts the calls of one strace log (-f -y) on paths or descriptors under `under`, between
 * the last begin marker (a call on UNDER/.fsops-begin...) and the end marker (UNDER/.fsops-end).
 */
export function countTrace(text, under) {
  const esc = under.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const anyPath = new RegExp(`(?:"${esc}|<${esc})(?:["/>])`);
  const firstFd = new RegExp(`^\\d+<${esc}(?:[/>])`);
  const marker = new RegExp(`"${esc}/\\.fsops-(begin|end)`);
  const isUnder = (path) => path === under || path.startsWith(`${under}/`);
  // Folders used through their descriptors (/proc/PID/fd/N/NAME, as ddmq's pinned folders
  // are): N's path is the one strace last printed for descriptor N.
  const fdPaths = new Map();
  const procPath = /"\/proc\/(?:self|\d+)\/fd\/(\d+)(?:[/"])/g;
  const underProc = (rest) => [...rest.matchAll(procPath)].some((p) => isUnder(fdPaths.get(p[1]) ?? ''));
  let byCall = {};
  let counting = false;
  let sawEnd = false;
  for (const line of text.split('\n')) {
    // "PID call(args) = result", or "PID call(args <unfinished ...>": a call is counted on the
    // line that shows its arguments, never again on its "<... call resumed>" line.
    const m = /^\d+\s+([a-z_0-9]+)\((.*)$/.exec(line);
    if (!m) continue;
    const [, call, rest] = m;
    for (const fd of rest.matchAll(/(?<![\w"/])(\d+)<([^>]*)>/g)) fdPaths.set(fd[1], fd[2]);
    const mk = marker.exec(rest);
    if (mk) {
      if (mk[1] === 'begin') {
        byCall = {};
        counting = true;
      } else if (counting) {
        counting = false;
        sawEnd = true;
      }
      continue;
    }
    if (!counting) continue;
    if (!(BY_DESCRIPTOR.has(call) ? firstFd.test(rest) : anyPath.test(rest) || underProc(rest))) continue;
    byCall[call] = (byCall[call] ?? 0) + 1;
  }
  if (!sawEnd) throw new Error(`the trace has no begin and end markers under ${under}: did the phase fail?`);
  return summarise(byCall);
}

/** { metadata, data, other, byCall }: totals of each group and every call's count. */
export function summarise(byCall) {
  const sum = (group) => Object.entries(byCall).reduce((t, [c, k]) => t + (group(c) ? k : 0), 0);
  return {
    metadata: sum((c) => METADATA.has(c)),
    data: sum((c) => DATA.has(c)),
    other: sum((c) => !METADATA.has(c) && !DATA.has(c)),
    byCall,
  };
}

/** Divides every count by `by` (messages, or seconds). */
export function per(counts, by) {
  const d = (x) => x / by;
  return { metadata: d(counts.metadata), data: d(counts.data), other: d(counts.other), byCall: Object.fromEntries(Object.entries(counts.byCall).map(([c, k]) => [c, d(k)])) };
}

export function hasStrace() {
  try {
    return fs.existsSync('/usr/bin/strace') || fs.existsSync('/bin/strace') || (process.env.PATH ?? '').split(':').some((p) => fs.existsSync(join(p, 'strace')));
  } catch {
    return false;
  }
}

/**
 * Runs one phase (ddmq's, or the floor's: `floor: true`) in a fresh folder under `root`,
 * traced, and returns { count, seconds, unit, total, per } where `per` is per message or per
 * second. The folder is removed afterwards.
 */
export async function runPhase({ root, phase, floor = false, n = 200, idleSeconds = 20, cliN = 20, fsync = false, env = process.env }) {
  const spec = PHASES.find((p) => p.name === phase);
  if (!spec) throw new Error(`unknown phase "${phase}"; phases: ${PHASES.map((p) => p.name).join(', ')}`);
  const base = join(fs.realpathSync(root), `fsops-${floor ? 'floor-' : ''}${phase}-${randomUUID().slice(0, 8)}`);
  fs.mkdirSync(base);
  const logDir = fs.mkdtempSync(join(os.tmpdir(), 'ddmq-fsops-'));
  const log = join(logDir, 'strace.log');
  try {
    const args = ['-f', '-y', '-qq', '-e', 'trace=%file,%desc,getdents64', '-o', log, process.execPath, CHILD, floor ? `floor-${phase}` : phase, base, String(n), String(idleSeconds), String(cliN), fsync ? 'fsync' : 'nofsync'];
    const { code, out, err } = await new Promise((resolve, reject) => {
      const child = spawn('strace', args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (err += d));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, out, err }));
    });
    if (code !== 0) throw new Error(`phase ${floor ? 'floor-' : ''}${phase} on ${root} failed (exit ${code}): ${err.trim().split('\n').slice(-5).join('\n')}`);
    const { count, seconds } = JSON.parse(out.trim().split('\n').pop());
    const total = countTrace(fs.readFileSync(log, 'utf8'), base);
    const by = spec.unit === 'second' ? seconds : count;
    return { phase, floor, count, seconds, unit: spec.unit, total, per: per(total, by) };
  } finally {
    fs.rmSync(logDir, { recursive: true, force: true });
    fs.rmSync(base, { recursive: true, force: true });
  }
}

/** ddmq's phase and the floor's, one after the other, and their difference. */
export async function measure(options) {
  const ddmq = await runPhase({ ...options, floor: false });
  const floor = await runPhase({ ...options, floor: true });
  return { phase: options.phase, unit: ddmq.unit, ddmq, floor, difference: ddmq.per.metadata - floor.per.metadata };
}
