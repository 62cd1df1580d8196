/**
 * Random bytes for message ids and claim tokens, from the kernel's /dev/urandom, read a
 * block at a time. node:crypto would do as well, but loading it costs ~10 ms, a good part
 * of a one-message `ddmq publish` (README: Performance, W6). Where /dev/urandom cannot be
 * read (another system, a sandbox), Web Crypto's getRandomValues fills the block.
 */
import * as fs from 'node:fs';

const BLOCK = 4096;
let pool = Buffer.alloc(0);
let at = 0;

/** `n` random bytes; the buffer is the caller's. */
export function randomBytes(n: number): Buffer {
  if (at + n > pool.length) refill(Math.max(BLOCK, n));
  const bytes = Buffer.from(pool.subarray(at, at + n));
  pool.fill(0, at, at + n); // a consumed byte is never handed out twice, even by mistake
  at += n;
  return bytes;
}

function refill(size: number): void {
  pool = Buffer.alloc(size); // zeroed: a failed fill must not hand out old memory
  at = 0;
  if (fillFromUrandom(pool)) return;
  for (let i = 0; i < size; i += 65536) globalThis.crypto.getRandomValues(pool.subarray(i, i + 65536)); // its limit a call
}

function fillFromUrandom(buffer: Buffer): boolean {
  let fd: number | undefined;
  try {
    fd = fs.openSync('/dev/urandom', 'r');
    for (let done = 0; done < buffer.length; ) {
      const read = fs.readSync(fd, buffer, done, buffer.length - done, null);
      if (read <= 0) return false;
      done += read;
    }
    return true;
  } catch {
    return false;
  } finally {
    if (fd !== undefined) {
      try {
        fs.closeSync(fd);
      } catch {
        // a read-only descriptor: nothing was lost
      }
    }
  }
}
