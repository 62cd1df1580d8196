// The floor: only the file operations ddmq's design needs per message, with no library
// around them. A workload's ratio is its rate divided by the floor's rate for the same
// work, measured in the same run on the same file system.
//   publish: write a temp file, rename it into the queue folder
//   consume: list the folder once; per message rename into work/, read, parse, unlink
import * as fs from 'node:fs';
import { join } from 'node:path';

/** A message file's content of the size ddmq writes for a short text. */
export function floorPayload(i) {
  return JSON.stringify({
    message: `task-${i}`,
    queue: 'q',
    priority: 999,
    queue_number: '17960000000000000000',
    id: '0123456789abcdef0123456789abcdef',
    filename: '999.17960000000000000000.ddmq0123456789abcdef0123456789abcdef',
    timeout: null,
    requeue: true,
    requeue_counter: 0,
    requeue_limit: null,
  });
}

export function floorQueue(root, name = 'q') {
  const dir = join(root, name);
  fs.mkdirSync(join(dir, 'work'), { recursive: true });
  return dir;
}

const id = (n) => n.toString(16).padStart(32, '0');
const name = (i, tag = 0) => `999.${String(1796000000000000000n + BigInt(tag) * 10_000_000n + BigInt(i)).padStart(20, '0')}.ddmq${id(i)}`;

/** Publishes `count` messages; `fsync` syncs the file before the rename and the folder after. */
export function floorPublish(dir, count, { fsync = false, tag = 0, start = 0, payload = floorPayload } = {}) {
  const tmpBase = join(dir, `.tmp-floor-${process.pid}-`);
  for (let i = start; i < start + count; i++) {
    const tmp = tmpBase + i;
    if (fsync) {
      const fd = fs.openSync(tmp, 'wx');
      fs.writeFileSync(fd, payload(i));
      fs.fsyncSync(fd);
      fs.closeSync(fd);
    } else {
      fs.writeFileSync(tmp, payload(i));
    }
    fs.renameSync(tmp, join(dir, name(i, tag)));
    if (fsync) {
      const dfd = fs.openSync(dir, 'r');
      fs.fsyncSync(dfd);
      fs.closeSync(dfd);
    }
  }
}

/**
 * Consumes up to `limit` messages: one listing (or the rest of one given, { names, next }),
 * then rename, read, parse and unlink each. A rename that finds the file gone (another
 * consumer took it) counts as lost.
 */
export function floorConsume(dir, limit = Infinity, onMessage, listing = { names: fs.readdirSync(dir), next: 0 }) {
  const work = join(dir, 'work');
  const expiry = Math.floor(Date.now() / 1000) + 600;
  let consumed = 0;
  let lost = 0;
  while (listing.next < listing.names.length) {
    const n = listing.names[listing.next++];
    if (consumed >= limit) break;
    if (!n.includes('.ddmq')) continue;
    const inFlight = join(work, `${expiry}.${n}`);
    try {
      fs.renameSync(join(dir, n), inFlight);
    } catch {
      lost++;
      continue;
    }
    const message = JSON.parse(fs.readFileSync(inFlight, 'utf8'));
    fs.unlinkSync(inFlight);
    onMessage?.(message);
    consumed++;
  }
  return { consumed, lost };
}
