/**
 * Where the output of `ddmq work`'s tasks goes.
 *
 * - Without --output, each task's stdout and stderr are pipes read by the worker, which
 *   writes them on to its own stdout and stderr in whole lines: lines of tasks running at
 *   once never mix within a line, and on a terminal the progress line is cleared before
 *   them and drawn again after (Terminal), never mixed with them.
 * - With --output DIR, they are files in DIR named by message id (outputFiles), which the
 *   command writes itself.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { DdmqError } from '../format/errors.js';

const CLEAR_LINE = '\r\x1b[K';

/**
 * The worker's stdout and stderr, with the progress line (on stderr, when it is a
 * terminal) kept apart from everything else written.
 */
export class Terminal {
  /** The progress line drawn now, '' if none. */
  private line = '';

  constructor(
    private readonly stdout: NodeJS.WritableStream & { isTTY?: boolean },
    private readonly stderr: NodeJS.WritableStream & { isTTY?: boolean },
  ) {}

  /** Draws (again) the progress line. */
  progress(text: string): void {
    this.line = text;
    this.stderr.write(`${CLEAR_LINE}${text}`);
  }

  /** Removes the progress line for good. */
  clearProgress(): void {
    if (this.line !== '') this.stderr.write(CLEAR_LINE);
    this.line = '';
  }

  /**
   * Writes text to stdout or stderr. If it could land on the progress line's screen line
   * (stderr, or stdout that is a terminal too), that line is cleared first and drawn again
   * after, and text that does not end a line is ended, so that the next redraw does not
   * erase it.
   */
  write(to: 'stdout' | 'stderr', text: string | Buffer): void {
    const stream = to === 'stdout' ? this.stdout : this.stderr;
    const shares = this.line !== '' && (to === 'stderr' || this.stdout.isTTY === true);
    if (!shares) {
      stream.write(text);
      return;
    }
    this.stderr.write(CLEAR_LINE);
    stream.write(text);
    const last = typeof text === 'string' ? text.at(-1) : text.length > 0 ? String.fromCharCode(text[text.length - 1]!) : '\n';
    if (last !== '\n') stream.write('\n');
    this.stderr.write(this.line);
  }
}

/** The longest part of a line kept back waiting for its end; longer ones are written as they are. */
const MAX_PENDING = 64 * 1024;

/** One task's stream, passed on in whole lines. */
export class LineSink {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Bytes seen. */
  bytes = 0;

  constructor(private readonly write: (chunk: Buffer) => void) {}

  push(chunk: Buffer): void {
    this.bytes += chunk.length;
    const nl = chunk.lastIndexOf(0x0a);
    if (nl === -1) {
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
      if (this.pendingBytes > MAX_PENDING) this.flush();
      return;
    }
    const whole = this.pending.length > 0 ? Buffer.concat([...this.pending, chunk.subarray(0, nl + 1)]) : chunk.subarray(0, nl + 1);
    this.pending = [];
    this.pendingBytes = 0;
    this.write(whole);
    if (nl + 1 < chunk.length) {
      const rest = chunk.subarray(nl + 1);
      this.pending.push(rest);
      this.pendingBytes = rest.length;
    }
  }

  /** Writes what is left (a last line without its end). */
  flush(): void {
    if (this.pendingBytes === 0) return;
    const rest = Buffer.concat(this.pending);
    this.pending = [];
    this.pendingBytes = 0;
    this.write(rest);
  }
}

export interface OutputFile {
  path: string;
  fd: number;
}

/** Opens a file that must not exist yet; a link by that name, even one leading nowhere, counts as existing. */
function createNew(path: string): number | undefined {
  try {
    return fs.openSync(path, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o666);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return undefined;
    // sshfs answers the loser of two exclusive creates of one name with EPERM: taken, if it is there now.
    if (code === 'EPERM' && taken(path)) return undefined;
    throw err;
  }
}

function taken(path: string): boolean {
  try {
    fs.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** How many names outputFiles tries past the attempt's own before it gives up. */
const MAX_TRIES = 1000;

/**
 * Makes DIR/ID.out and DIR/ID.err for a message's first attempt, DIR/ID.N.out and
 * DIR/ID.N.err for attempt N. When either name is taken (the same attempt ran before:
 * released at a stop, or its lease lost; or anything else is there, a link included),
 * the next number that is free for both is used. Nothing is ever opened through a link
 * or overwritten: the files are made with O_CREAT|O_EXCL|O_NOFOLLOW.
 */
export function outputFiles(dir: string, id: string, attempt: number): { stdout: OutputFile; stderr: OutputFile } {
  for (let n = Math.max(1, attempt); n < attempt + MAX_TRIES; n++) {
    const base = join(dir, n === 1 ? id : `${id}.${n}`);
    const out = createNew(`${base}.out`);
    if (out === undefined) continue;
    let err: number | undefined;
    try {
      err = createNew(`${base}.err`);
    } catch (e) {
      fs.closeSync(out);
      fs.unlinkSync(`${base}.out`);
      throw e;
    }
    if (err === undefined) {
      // Ours, just made and empty: given up for the next number.
      fs.closeSync(out);
      fs.unlinkSync(`${base}.out`);
      continue;
    }
    return { stdout: { path: `${base}.out`, fd: out }, stderr: { path: `${base}.err`, fd: err } };
  }
  throw new DdmqError('IO', `--output ${dir}: no free name for the output of ${id} (tried ${MAX_TRIES})`, { path: dir, osCode: 'EEXIST' });
}
