/**
 * Nothing outside the root, ever: every command, run through the CLI, against every
 * place of the tree where a symbolic link can stand (a queue folder, each subfolder, the
 * ddmq.yaml of the queue and of the root), pointing at a canary folder outside the root
 * that looks like what ddmq expects there, with and without files ddmq did not write.
 * The canary must stay byte-for-byte the same, the link must stay where it was, and the
 * command must refuse, naming the link (except where it has no business with the
 * place, which the table says).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Broker } from '../src/index.js';
import { CLI, snapshot, tempDir } from './helpers.js';

const ID = '0123456789abcdef0123456789abcdef';
const READY = `5.17000000000000000000.ddmq${ID}`;
/** In flight, its lease long over: a cleaner takes it, a purge or delete deletes it. */
const IN_FLIGHT = `1.${READY}aaaaaaaaaaaa`;
/** Delayed, long due: a clean or consume would move it into the queue. */
const DELAYED = `1.${READY}`;
const MESSAGE = JSON.stringify({ message: 'CANARY', queue: 'q', priority: 5, queue_number: '17000000000000000000', id: ID, requeue: true });

type Place = 'queue folder' | 'work/' | 'delayed/' | 'corrupt/' | 'queue ddmq.yaml' | 'root ddmq.yaml';
const PLACES: Place[] = ['queue folder', 'work/', 'delayed/', 'corrupt/', 'queue ddmq.yaml', 'root ddmq.yaml'];

/** Every command of the CLI (json runs the same table), with the queue Q the link concerns. */
const COMMANDS: { name: string; args: (root: string, q: string) => string[]; unaffected?: Place[] }[] = [
  { name: 'view', args: (r) => ['view', r] },
  { name: 'view Q', args: (r, q) => ['view', r, q] },
  { name: 'view -n', args: (r) => ['view', r, '-n'] },
  { name: 'create', args: (r, q) => ['create', r, q] },
  { name: 'delete', args: (r, q) => ['delete', r, q] },
  { name: 'publish', args: (r, q) => ['publish', r, q, 'hello'] },
  { name: 'publish --delay', args: (r, q) => ['publish', r, q, 'later', '--delay', '60'] },
  { name: 'publish --file', args: (r, q) => ['publish', r, q, '--file', '/dev/null'] },
  { name: 'consume', args: (r, q) => ['consume', r, q, '-n', '5'] },
  { name: 'peek', args: (r, q) => ['peek', r, q] },
  { name: 'ack', args: (r, q) => ['ack', r, q, IN_FLIGHT] },
  { name: 'ack -r', args: (r, q) => ['ack', r, q, IN_FLIGHT, '-r'] },
  { name: 'nack', args: (r, q) => ['nack', r, q, IN_FLIGHT] },
  { name: 'nack --drop', args: (r, q) => ['nack', r, q, IN_FLIGHT, '--drop'] },
  { name: 'del_msg ready', args: (r, q) => ['del_msg', r, q, READY] },
  { name: 'del_msg in flight', args: (r, q) => ['del_msg', r, q, IN_FLIGHT] },
  { name: 'purge', args: (r, q) => ['purge', r, q] },
  { name: 'clean', args: (r) => ['clean', r] },
  { name: 'clean Q', args: (r, q) => ['clean', r, q] },
  { name: 'redrive Q', args: (r, q) => ['redrive', r, q] },
  { name: 'redrive --to Q', args: (r, q) => ['redrive', r, 'dead', '--to', q] },
  { name: 'settings Q', args: (r, q) => ['settings', r, q] },
  { name: 'settings Q --set', args: (r, q) => ['settings', r, q, '--set', 'priority=3'] },
  { name: 'settings Q --unset', args: (r, q) => ['settings', r, q, '--unset', 'priority'] },
  // The root's own settings have nothing to do with a queue's folders.
  { name: 'settings', args: (r) => ['settings', r], unaffected: ['queue folder', 'work/', 'delayed/', 'corrupt/', 'queue ddmq.yaml'] },
  { name: 'settings --set', args: (r) => ['settings', r, '--set', 'priority=4'], unaffected: ['queue folder', 'work/', 'delayed/', 'corrupt/', 'queue ddmq.yaml'] },
  { name: 'stats', args: (r) => ['stats', r] },
  { name: 'stats Q', args: (r, q) => ['stats', r, q] },
  { name: 'top --once', args: (r) => ['top', r, '--once'] },
  { name: 'top Q --once', args: (r, q) => ['top', r, q, '--once', '--format', 'json'] },
  { name: 'work', args: (r, q) => ['work', r, q, '--max-messages', '1', '--idle-exit', '1', '--', 'true'] },
];


/** What the link points at: a canary that looks like what ddmq expects in that place. */
function makeCanary(dir: string, place: Place, foreign: boolean): void {
  fs.mkdirSync(dir, { recursive: true });
  const folder = (d: string) => {
    fs.mkdirSync(d, { recursive: true });
    fs.writeFileSync(join(d, READY), MESSAGE);
    fs.writeFileSync(join(d, IN_FLIGHT), MESSAGE);
    fs.writeFileSync(join(d, 'ddmq.yaml'), 'priority: 1\n');
    if (foreign) fs.writeFileSync(join(d, 'notes.txt'), 'not ddmq');
  };
  if (place === 'queue ddmq.yaml' || place === 'root ddmq.yaml') {
    fs.writeFileSync(join(dir, 'ddmq.yaml'), foreign ? 'priority: 1\nmine: true\n' : 'priority: 1\n');
  } else if (place === 'queue folder') {
    folder(dir);
    folder(join(dir, 'work'));
    folder(join(dir, 'delayed'));
    fs.writeFileSync(join(dir, 'delayed', DELAYED), MESSAGE);
    folder(join(dir, 'corrupt'));
  } else {
    folder(dir);
    fs.writeFileSync(join(dir, DELAYED.replace('1.', '2.')), MESSAGE);
  }
}

/** A root with queues q (the one the links go into), dead (a dead letter from q) and keep. */
async function makeTree(root: string): Promise<void> {
  const past = await Broker.open(root, { create: true, now: () => Date.now() - 3_600_000 });
  await past.createQueue('q', { retry_delay: 0, dead_letter: 'dead' });
  await past.createQueue('keep');
  await past.publish('keep', 'kept');
  await past.publish('q', 'ready one');
  await past.publish('q', 'in flight, expired');
  await past.consume('q', { lease: 1 });
  await past.publish('q', 'delayed, due', { delay: 1 });
  await past.publish('q', 'doomed', { requeueLimit: 0 });
  const [doomed] = await past.consume('q', { skipCleaning: true });
  await past.nack(doomed!);
  fs.mkdirSync(join(root, 'q', 'corrupt'), { recursive: true });
  past.close();
}

function plant(root: string, canary: string, place: Place): { link: string; queue: string } {
  const target = place.endsWith('ddmq.yaml') ? join(canary, 'ddmq.yaml') : canary;
  const link =
    place === 'queue folder' ? join(root, 'lq')
    : place === 'root ddmq.yaml' ? join(root, 'ddmq.yaml')
    : place === 'queue ddmq.yaml' ? join(root, 'q', 'ddmq.yaml')
    : join(root, 'q', place.slice(0, -1));
  fs.rmSync(link, { recursive: true, force: true });
  fs.symlinkSync(target, link);
  return { link, queue: place === 'queue folder' ? 'lq' : 'q' };
}

function run(args: string[]): Promise<{ code: number | null; err: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.setEncoding('utf8').on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, err }));
  });
}

async function inParallel<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

describe('nothing outside the root: every command against a link in every place', () => {
  for (const foreign of [false, true]) {
    it(`${COMMANDS.length} commands x ${PLACES.length} places, ${foreign ? 'with' : 'without'} foreign files beside the canary`, async () => {
      const base = tempDir('ddmq-links-');
      const cases = PLACES.flatMap((place) => COMMANDS.map((command) => ({ place, command })));
      const problems: string[] = [];
      await inParallel(cases, 4, async ({ place, command }) => {
        const dir = join(base, `${PLACES.indexOf(place)}-${COMMANDS.indexOf(command)}`);
        const root = join(dir, 'root');
        const canary = join(dir, 'canary');
        await makeTree(root);
        makeCanary(canary, place, foreign);
        const before = snapshot(canary);
        const { link, queue } = plant(root, canary, place);
        const linkTarget = fs.readlinkSync(link);
        const r = await run(command.args(root, queue));
        const what = `${command.name} with a link as ${place}`;
        if (JSON.stringify(snapshot(canary)) !== JSON.stringify(before)) problems.push(`${what}: the canary outside the root changed`);
        if (!fs.lstatSync(link, { throwIfNoEntry: false })?.isSymbolicLink() || fs.readlinkSync(link) !== linkTarget) {
          problems.push(`${what}: the link was removed or replaced`);
        }
        if (/\n\s+at /.test(r.err)) problems.push(`${what}: a stack trace`);
        if (command.unaffected?.includes(place)) {
          if (r.code !== 0) problems.push(`${what}: exit ${r.code}, expected 0 (${r.err.trim()})`);
        } else if (!(r.code === 2 || r.code === 7) || !/symbolic link/.test(r.err)) {
          problems.push(`${what}: exit ${r.code}, expected a refusal naming the link (exit 2, or 7 if other queues were handled): ${r.err.trim()}`);
        }
      });
      assert.deepEqual(problems, []);
    });
  }
});

/** Where a link can stand in the task records' tree (ROOT/.ddmq/records/QUEUE/). */
type RecordsPlace = '.ddmq' | '.ddmq/records' | 'records of q' | 'records of a deleted queue';
const RECORDS_PLACES: RecordsPlace[] = ['.ddmq', '.ddmq/records', 'records of q', 'records of a deleted queue'];
const OF_Q: RecordsPlace[] = ['.ddmq', '.ddmq/records', 'records of q'];

/**
 * The commands that read, write or prune task records, the places they have business
 * with, and what they do there: refuse (exit 2), or warn and go on (exit 0: a record is
 * never worth failing a message or a clean for). Elsewhere they must not mention a link.
 */
const RECORDS_COMMANDS: { name: string; args: (root: string) => string[]; places: RecordsPlace[]; refuses: boolean }[] = [
  { name: 'clean', args: (r) => ['clean', r], places: RECORDS_PLACES, refuses: false },
  { name: 'clean Q', args: (r) => ['clean', r, 'q'], places: OF_Q, refuses: false },
  { name: 'stats', args: (r) => ['stats', r], places: RECORDS_PLACES, refuses: true },
  { name: 'stats Q', args: (r) => ['stats', r, 'q'], places: OF_Q, refuses: true },
  { name: 'consume', args: (r) => ['consume', r, 'q'], places: OF_Q, refuses: false },
  { name: 'work', args: (r) => ['work', r, 'q', '--max-messages', '1', '--idle-exit', '1', '--', 'true'], places: OF_Q, refuses: false },
];

/**
 * A canary that looks like what ddmq expects at the place: record files last written a
 * month ago by a writer of another host (any clean that reached them would drop them),
 * a queue's folder that is empty (which a clean would remove), a file ddmq did not write.
 */
function makeRecordsCanary(dir: string, place: RecordsPlace): void {
  const queueFolder = (d: string) => {
    fs.mkdirSync(d, { recursive: true });
    const line = JSON.stringify({ queue: 'q', id: ID, host: 'otherhost', pid: 1, start: null, end: 1, runtime_ms: null, outcome: 'done', action: 'acked', exit_code: null, signal: null, attempt: null, error: null });
    for (const name of ['otherhost-1-1.jsonl', 'otherhost-2-1.jsonl']) {
      fs.writeFileSync(join(d, name), `${line}\n`);
      const month = new Date(Date.now() - 30 * 86400e3);
      fs.utimesSync(join(d, name), month, month);
    }
    fs.writeFileSync(join(d, 'notes.txt'), 'not ddmq');
  };
  const recordsFolder = (d: string) => {
    for (const q of ['q', 'gone', 'keep']) queueFolder(join(d, q));
    fs.mkdirSync(join(d, 'empty'), { recursive: true });
  };
  if (place === '.ddmq') recordsFolder(join(dir, 'records'));
  else if (place === '.ddmq/records') recordsFolder(dir);
  else queueFolder(dir);
}

/** The tree of makeTree, with the records of a queue "gone" that was deleted since. */
async function makeRecordsTree(root: string): Promise<void> {
  await makeTree(root);
  const broker = await Broker.open(root);
  await broker.createQueue('gone');
  await broker.publish('gone', 'done before its queue was deleted');
  await broker.ack((await broker.consume('gone'))[0]!);
  broker.close();
  await broker.deleteQueue('gone');
}

describe('nothing outside the root: the task records', () => {
  it(`${RECORDS_COMMANDS.length} commands x ${RECORDS_PLACES.length} places of the records tree`, async () => {
    const base = tempDir('ddmq-links-');
    const cases = RECORDS_PLACES.flatMap((place) => RECORDS_COMMANDS.map((command) => ({ place, command })));
    const problems: string[] = [];
    await inParallel(cases, 4, async ({ place, command }) => {
      const dir = join(base, `${RECORDS_PLACES.indexOf(place)}-${RECORDS_COMMANDS.indexOf(command)}`);
      const root = join(dir, 'root');
      const canary = join(dir, 'canary');
      await makeRecordsTree(root);
      makeRecordsCanary(canary, place);
      const before = snapshot(canary);
      const link = join(root, '.ddmq', ...(place === '.ddmq' ? [] : place === '.ddmq/records' ? ['records'] : ['records', place === 'records of q' ? 'q' : 'gone']));
      fs.rmSync(link, { recursive: true, force: true });
      fs.symlinkSync(canary, link);
      const r = await run(command.args(root));
      const what = `${command.name} with a link as ${place}`;
      if (JSON.stringify(snapshot(canary)) !== JSON.stringify(before)) problems.push(`${what}: the canary outside the root changed`);
      if (!fs.lstatSync(link, { throwIfNoEntry: false })?.isSymbolicLink() || fs.readlinkSync(link) !== canary) problems.push(`${what}: the link was removed or replaced`);
      if (/\n\s+at /.test(r.err)) problems.push(`${what}: a stack trace`);
      if (!command.places.includes(place)) {
        if (r.code !== 0 || /symbolic link/.test(r.err)) problems.push(`${what}: exit ${r.code}, expected 0 and no word of the link: ${r.err.trim()}`);
      } else if (r.code !== (command.refuses ? 2 : 0) || !/symbolic link/.test(r.err)) {
        problems.push(`${what}: exit ${r.code}, expected ${command.refuses ? 'a refusal (exit 2)' : 'a warning (exit 0)'} naming the link: ${r.err.trim()}`);
      }
    });
    assert.deepEqual(problems, []);
  });
});
