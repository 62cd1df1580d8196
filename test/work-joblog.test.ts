/** `ddmq work --joblog`, `--output`, task output on a terminal, and the fields of JSON events; run as a child process. */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Broker } from '../src/index.js';
import { outputFiles } from '../src/cli/task-output.js';
import { CLI, errno, patchFs, tempDir } from './helpers.js';

async function queueOf(settings = {}) {
  const dir = tempDir();
  const root = join(dir, 'root');
  const broker = await Broker.open(root, { create: true });
  await broker.createQueue('q', settings);
  return { dir, root, broker };
}

function ddmq(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { code: r.status, out: r.stdout, err: r.stderr, pid: r.pid };
}

const COLUMNS = ['Seq', 'Host', 'Starttime', 'JobRuntime', 'Send', 'Receive', 'Exitval', 'Signal', 'Queue', 'MessageId', 'Attempt', 'Outcome', 'Stdout', 'Stderr', 'Command'] as const;
type Line = Record<(typeof COLUMNS)[number], string>;

/** The joblog's lines as objects keyed by the header's columns; checks the header and that every line is whole. */
function readJoblog(path: string): Line[] {
  const text = fs.readFileSync(path, 'utf8');
  assert.ok(text.endsWith('\n'), 'every line is whole');
  const [header, ...lines] = text.slice(0, -1).split('\n');
  assert.deepEqual(header!.split('\t'), COLUMNS);
  return lines.map((l) => {
    const fields = l.split('\t');
    assert.equal(fields.length, COLUMNS.length, l);
    return Object.fromEntries(COLUMNS.map((c, i) => [c, fields[i]!])) as Line;
  });
}

const SCRIPT = 'case "$1" in ok) echo hi;; fail) echo no >&2; exit 3;; slow) exec sleep 30;; kill) kill -KILL $$;; started) echo started; exec sleep 30;; esac';

describe('ddmq work --joblog', () => {
  it('a header, then one line per finished task: done, failed, timed out, killed by a signal', async () => {
    const { dir, root, broker } = await queueOf();
    const ids = new Map<string, string>();
    for (const t of ['ok', 'fail', 'slow', 'kill']) ids.set(t, (await broker.publish('q', t, { requeue: false })).id);
    const log = join(dir, 'joblog.tsv');
    const before = Date.now();
    const r = ddmq(['work', root, 'q', '-j', '4', '--timeout', '2', '--idle-exit', '1', '--joblog', log, '--format', 'json', '--', 'sh', '-c', SCRIPT, 'sh', '{}']);
    assert.equal(r.code, 6, r.err);
    const lines = readJoblog(log);
    assert.equal(lines.length, 4, 'one line per task');
    assert.deepEqual(lines.map((l) => Number(l.Seq)).sort(), [1, 2, 3, 4]);
    const byText = new Map(lines.map((l) => [[...ids].find(([, id]) => id === l.MessageId)![0], l]));
    for (const [text, l] of byText) {
      assert.equal(l.Host, hostname());
      assert.equal(l.Queue, 'q');
      assert.equal(l.Attempt, '1');
      assert.equal(l.Send, String(text.length), 'the message text went to its stdin');
      assert.equal(l.Stdout, '-');
      assert.equal(l.Command, `sh -c '${SCRIPT.replaceAll("'", "'\\''")}' sh ${text}`);
      assert.match(l.Starttime, /^\d{10}\.\d{3}$/);
      assert.ok(Number(l.Starttime) * 1000 >= before - 1000 && Number(l.Starttime) * 1000 <= Date.now());
      assert.match(l.JobRuntime, /^\d+\.\d{3}$/);
    }
    const cols = (t: string) => (['Exitval', 'Signal', 'Outcome', 'Receive'] as const).map((c) => byText.get(t)![c]);
    assert.deepEqual(cols('ok'), ['0', '0', 'done', '3']);
    assert.deepEqual(cols('fail'), ['3', '0', 'dropped', '3']);
    assert.deepEqual(cols('slow'), ['-1', '15', 'dropped', '0'], 'ended by --timeout: SIGTERM');
    assert.deepEqual(cols('kill'), ['-1', '9', 'dropped', '0']);
    assert.ok(Number(byText.get('slow')!.JobRuntime) >= 2, 'ran until its timeout');

    // The same facts in the JSON events.
    const events = r.out.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(events.length, 4);
    for (const e of events) {
      assert.deepEqual([e.host, e.pid, e.attempt, e.stdout, e.stderr], [hostname(), r.pid, 1, null, null]);
      assert.equal(typeof e.ms, 'number');
    }
    const slow = events.find((e) => e.message === 'slow');
    assert.deepEqual([slow.exit_code, slow.signal], [null, 'SIGTERM']);
    assert.ok(slow.ms >= 2000);
  });

  it('a task ended at a stop is logged as released; a second run appends without another header', async () => {
    const { dir, root, broker } = await queueOf();
    await broker.publish('q', 'started');
    const log = join(dir, 'log', 'w.tsv'); // its folder is made
    const child = spawn(process.execPath, [CLI, 'work', root, 'q', '--grace', '0', '--joblog', log, '--', 'sh', '-c', SCRIPT, 'sh', '{}'], { stdio: ['ignore', 'pipe', 'pipe'] });
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    child.kill('SIGTERM');
    const code = await new Promise((r) => child.on('close', r));
    assert.equal(code, 143);
    let lines = readJoblog(log);
    assert.equal(lines.length, 1);
    assert.deepEqual([lines[0]!.Outcome, lines[0]!.Exitval, lines[0]!.Signal, lines[0]!.Receive], ['released', '-1', '15', '8']);

    await broker.publish('q', 'ok');
    const r = ddmq(['work', root, 'q', '--idle-exit', '1', '--joblog', log, '--', 'sh', '-c', 'case "$1" in started) ;; *) exit 0;; esac', 'sh', '{}']);
    assert.equal(r.code, 0, r.err);
    lines = readJoblog(log); // one header only
    assert.deepEqual(lines.map((l) => l.Outcome), ['released', 'done', 'done']);
    assert.deepEqual(lines.map((l) => l.Seq), ['1', '1', '2'], 'each worker counts its own');
  });

  it('two workers, each with its own joblog by %j (a Slurm array task): every task in exactly one line of one of them', async () => {
    const { dir, root, broker } = await queueOf();
    const ids = new Set<string>();
    for (let i = 0; i < 20; i++) ids.add((await broker.publish('q', `t${i}`)).id);
    const run = (task: string) =>
      new Promise<number | null>((resolve) => {
        const p = spawn(process.execPath, [CLI, 'work', root, 'q', '--idle-exit', '1', '--joblog', join(dir, 'joblog', '%j.tsv'), '--', 'sleep', '0.05'], {
          stdio: 'ignore',
          env: { ...process.env, SLURM_JOB_ID: `9${task}`, SLURM_ARRAY_JOB_ID: '77', SLURM_ARRAY_TASK_ID: task },
        });
        p.on('close', resolve);
      });
    assert.deepEqual(await Promise.all([run('1'), run('2')]), [0, 0]);
    assert.deepEqual(fs.readdirSync(join(dir, 'joblog')).sort(), ['77_1.tsv', '77_2.tsv']);
    const all = ['77_1.tsv', '77_2.tsv'].flatMap((f) => readJoblog(join(dir, 'joblog', f)));
    assert.equal(all.length, 20);
    assert.deepEqual(new Set(all.map((l) => l.MessageId)), ids);
    assert.ok(all.every((l) => l.Outcome === 'done'));
  });

  it('%h, %p and %j are filled in; an unknown placeholder and a link are refused', async () => {
    const { dir, root, broker } = await queueOf();
    await broker.publish('q', 'x');
    const env = { SLURM_JOB_ID: '', SLURM_ARRAY_JOB_ID: '', SLURM_ARRAY_TASK_ID: '' };
    let r = ddmq(['work', root, 'q', '--idle-exit', '1', '--joblog', join(dir, '%h.%p.%j.%%.tsv'), '--', 'true'], env);
    assert.equal(r.code, 0, r.err);
    assert.ok(fs.existsSync(join(dir, `${hostname()}.${r.pid}.${hostname()}-${r.pid}.%.tsv`)), fs.readdirSync(dir).join(' '));
    r = ddmq(['work', root, 'q', '--idle-exit', '1', '--joblog', join(dir, '%x.tsv'), '--', 'true']);
    assert.equal(r.code, 2);
    assert.match(r.err, /unknown placeholder "%x"/);
    const canary = join(dir, 'canary');
    fs.writeFileSync(canary, 'keep');
    fs.symlinkSync(canary, join(dir, 'link.tsv'));
    r = ddmq(['work', root, 'q', '--idle-exit', '1', '--joblog', join(dir, 'link.tsv'), '--', 'true']);
    assert.equal(r.code, 2);
    assert.match(r.err, /symbolic link/);
    assert.equal(fs.readFileSync(canary, 'utf8'), 'keep');
  });

  it('a FIFO in the joblog\'s place is refused at once, not waited on for ever; the message stays ready', async () => {
    const { dir, root, broker } = await queueOf();
    await broker.publish('q', 'x');
    const fifo = join(dir, 'fifo.tsv');
    spawnSync('mkfifo', [fifo]);
    const r = spawnSync(process.execPath, [CLI, 'work', root, 'q', '--idle-exit', '1', '--joblog', fifo, '--', 'true'], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(r.signal, null, 'it did not hang');
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /^ddmq: error: --joblog .*fifo\.tsv: not a regular file/);
    assert.equal((await broker.counts('q'))[0]!.ready, 1);
  });

  it('a joblog or output folder that cannot be made (under /proc, where Node\'s recursive mkdir spins) fails at once, naming the option', async () => {
    const { root, broker } = await queueOf();
    await broker.publish('q', 'x');
    for (const [option, path] of [['--joblog', '/proc/ddmq-none/log.tsv'], ['--output', '/proc/ddmq-none/out']]) {
      const r = spawnSync(process.execPath, [CLI, 'work', root, 'q', '--idle-exit', '1', option!, path!, '--', 'true'], { encoding: 'utf8', timeout: 10_000 });
      assert.equal(r.signal, null, `${option}: it did not spin`);
      assert.equal(r.status, 4, r.stderr);
      assert.equal(r.stderr, `ddmq: error: ${option} ${path}: cannot create folder /proc/ddmq-none: no such file or folder (ENOENT)\n`);
    }
    assert.equal((await broker.counts('q'))[0]!.ready, 1);
  });
});

describe('ddmq work --output', () => {
  it("each task's stdout and stderr in DIR/ID.out and DIR/ID.err; a retry's in ID.2.*, the first kept", async () => {
    const { dir, root, broker } = await queueOf({ retry_delay: 0 });
    const ids = new Map<string, string>();
    for (const t of ['a', 'b', 'c']) ids.set(t, (await broker.publish('q', t, { requeueLimit: 1 })).id);
    const out = join(dir, 'out');
    const runs = join(dir, 'runs');
    fs.mkdirSync(runs);
    // Each run says which it is; every message fails twice (its limit), so runs twice.
    const script = `n=$(( $(cat ${runs}/$1 2>/dev/null || echo 0) + 1 )); echo $n > ${runs}/$1; echo "out $1 $n"; echo "err $1 $n" >&2; exit 1`;
    const log = join(dir, 'joblog.tsv');
    const r = ddmq(['work', root, 'q', '-j', '3', '--idle-exit', '1', '--output', out, '--joblog', log, '--format', 'json', '--', 'sh', '-c', script, 'sh', '{}']);
    assert.equal(r.code, 6, r.err);
    for (const [t, id] of ids) {
      assert.equal(fs.readFileSync(join(out, `${id}.out`), 'utf8'), `out ${t} 1\n`);
      assert.equal(fs.readFileSync(join(out, `${id}.err`), 'utf8'), `err ${t} 1\n`);
      assert.equal(fs.readFileSync(join(out, `${id}.2.out`), 'utf8'), `out ${t} 2\n`);
      assert.equal(fs.readFileSync(join(out, `${id}.2.err`), 'utf8'), `err ${t} 2\n`);
    }
    assert.equal(fs.readdirSync(out).length, 12);
    assert.equal(r.out.includes('out a'), false, 'not through the worker');
    const events = r.out.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(events.length, 6);
    for (const e of events) {
      const base = join(out, e.attempt === 1 ? e.id : `${e.id}.${e.attempt}`);
      assert.deepEqual([e.stdout, e.stderr], [`${base}.out`, `${base}.err`]);
    }
    const lines = readJoblog(log);
    assert.equal(lines.length, 6);
    for (const l of lines) {
      const base = join(out, l.Attempt === '1' ? l.MessageId : `${l.MessageId}.${l.Attempt}`);
      assert.deepEqual([l.Stdout, l.Stderr, l.Receive], [`${base}.out`, `${base}.err`, '16']);
    }
  });

  it('a link planted at an output file name is not followed: the canary is unchanged, the output goes to the next free name', async () => {
    const { dir, root, broker } = await queueOf();
    const a = (await broker.publish('q', 'a')).id;
    const b = (await broker.publish('q', 'b')).id;
    const out = join(dir, 'out');
    fs.mkdirSync(out);
    const canary = join(dir, 'canary');
    fs.writeFileSync(canary, 'canary');
    fs.symlinkSync(canary, join(out, `${a}.out`));
    fs.symlinkSync(canary, join(out, `${b}.err`));
    fs.symlinkSync(join(dir, 'nowhere'), join(out, `${b}.2.out`)); // a link leading nowhere is not made through either
    const r = ddmq(['work', root, 'q', '--idle-exit', '1', '--output', out, '--', 'sh', '-c', 'echo "out $1"; echo "err $1" >&2', 'sh', '{}']);
    assert.equal(r.code, 0, r.err);
    assert.equal(fs.readFileSync(canary, 'utf8'), 'canary');
    assert.equal(fs.existsSync(join(dir, 'nowhere')), false);
    for (const name of [`${a}.out`, `${b}.err`, `${b}.2.out`]) assert.ok(fs.lstatSync(join(out, name)).isSymbolicLink(), `${name} left as it was`);
    assert.equal(fs.readFileSync(join(out, `${a}.2.out`), 'utf8'), 'out a\n');
    assert.equal(fs.readFileSync(join(out, `${a}.2.err`), 'utf8'), 'err a\n');
    assert.equal(fs.readFileSync(join(out, `${b}.3.out`), 'utf8'), 'out b\n');
    assert.equal(fs.readFileSync(join(out, `${b}.3.err`), 'utf8'), 'err b\n');
    assert.equal(fs.existsSync(join(out, `${b}.out`)), false, 'the half of a pair made before its other half was found taken is removed');
  });
});

/**
 * What a terminal shows after the bytes: \r goes back to the line's start, ESC [ K erases
 * to its end, \n ends the line; anything else is written over what is there.
 */
function screenOf(bytes: string): string[] {
  const lines: string[] = [];
  let line = '';
  let col = 0;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (c === '\r') col = 0;
    else if (c === '\n') {
      lines.push(line);
      line = '';
      col = 0;
    } else if (c === '\x1b' && bytes.startsWith('\x1b[K', i)) {
      line = line.slice(0, col);
      i += 2;
    } else {
      line = line.slice(0, col) + c + line.slice(col + 1);
      col++;
    }
  }
  if (line !== '') lines.push(line);
  return lines;
}

describe('output files on a network file system', () => {
  it('EPERM for an exclusive create of a name that is there (sshfs) counts as taken: the next number is used', () => {
    const dir = tempDir();
    fs.writeFileSync(join(dir, 'abc.out'), 'the other host');
    const restore = patchFs('openSync', (original) => ((path: fs.PathLike, flags?: fs.OpenMode, mode?: fs.Mode) => {
      if (typeof flags === 'number' && flags & fs.constants.O_EXCL && fs.existsSync(path)) throw errno('EPERM', String(path));
      return original(path, flags as fs.OpenMode, mode);
    }) as typeof fs.openSync);
    let files;
    try {
      files = outputFiles(dir, 'abc', 1);
    } finally {
      restore();
    }
    fs.closeSync(files.stdout.fd);
    fs.closeSync(files.stderr.fd);
    assert.deepEqual([files.stdout.path, files.stderr.path], [join(dir, 'abc.2.out'), join(dir, 'abc.2.err')]);
    assert.equal(fs.readFileSync(join(dir, 'abc.out'), 'utf8'), 'the other host');
  });

  it('EPERM for a name that is not there is a real refusal', () => {
    const dir = tempDir();
    const restore = patchFs('openSync', () => (() => {
      throw errno('EPERM', 'no');
    }) as unknown as typeof fs.openSync);
    try {
      assert.throws(() => outputFiles(dir, 'abc', 1), /EPERM/);
    } finally {
      restore();
    }
  });
});

describe('task output on a terminal', () => {
  it('is never written into the progress line: each output line stands whole on a line of its own', async () => {
    const { dir, root, broker } = await queueOf();
    for (let i = 0; i < 6; i++) await broker.publish('q', `t${i}`);
    const typescript = join(dir, 'typescript');
    // The first output comes once the progress line (every 500 ms) has been drawn; each
    // stdout line is written in two parts, which the worker passes on as one.
    const cmd = `"${process.execPath}" "${CLI}" work "${root}" q -j 2 --idle-exit 1 -- sh -c 'sleep 0.7; printf out-; sleep 0.2; echo $1; printf "err-$1" >&2' sh {}`;
    const r = spawnSync('script', ['-q', '-e', '-c', cmd, typescript], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const bytes = fs.readFileSync(typescript, 'utf8');
    assert.match(bytes, /ETA /, 'the progress line was drawn');
    const screen = screenOf(bytes);
    const output = screen.filter((l) => /(out|err)-t/.test(l));
    assert.deepEqual(
      output.sort(),
      Array.from({ length: 6 }, (_, i) => [`err-t${i}`, `out-t${i}`]).flat().sort(),
      `every output line whole and alone on its line:\n${screen.join('\n')}`,
    );
    assert.ok(screen.some((l) => /^ddmq work: 6 done, 0 failed/.test(l)), screen.join('\n'));
  });
});
