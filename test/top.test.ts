/**
 * `ddmq top`: its frames (plain and JSON, one with --once), a terminal run, the workers'
 * presence files it reads, and the record tail that lets it read only what was appended.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Broker, work } from '../src/index.js';
import { PRESENCE_ACTIVE_MS, type WorkerPresence } from '../src/format/presence.js';
import type { TaskRecord } from '../src/format/records.js';
import { sparkline, TopHistory } from '../src/format/top.js';
import { RecordTail } from '../src/store/record-reader.js';
import { CLI, ls, setMtime, sleep, tempDir } from './helpers.js';

const MIN = 60_000;

function rec(over: Partial<TaskRecord> & Pick<TaskRecord, 'end' | 'outcome'>): TaskRecord {
  return {
    queue: 'q',
    id: `id${over.end}`,
    host: 'h1',
    pid: 1,
    start: over.end - 1000,
    runtime_ms: 1000,
    action: over.outcome === 'done' ? 'acked' : over.outcome === 'failed' ? 'requeued' : null,
    exit_code: over.outcome === 'done' ? 0 : 1,
    signal: null,
    attempt: 1,
    error: over.outcome === 'done' ? null : 'boom',
    ...over,
  };
}

function presence(over: Partial<WorkerPresence & { active: boolean }>): WorkerPresence & { active: boolean } {
  return {
    host: 'h1',
    pid: 1,
    queue: 'q',
    started: 0,
    heartbeat: 0,
    concurrency: 4,
    running_count: 2,
    running: [],
    done: 0,
    failed: 0,
    released: 0,
    lease_lost: 0,
    active: true,
    ...over,
  };
}

function cli(...args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
}

describe('top frames', () => {
  it('counts, rates, the chart by minute, dead, workers by host and the latest failures, from records and presence', () => {
    const now = Date.UTC(2026, 0, 1, 12, 30, 30); // half a minute into 12:30
    const history = new TopHistory(5);
    history.add([
      rec({ end: now - 20 * MIN, outcome: 'failed', action: 'dead-lettered' }), // before the window: only its dead counts
      rec({ end: now - 4 * MIN, outcome: 'done' }), // 12:26:30, the first minute of the chart
      rec({ end: now - 3 * MIN, outcome: 'done' }),
      rec({ end: now - 3 * MIN + 1, outcome: 'done' }),
      rec({ end: now - 2 * MIN, outcome: 'failed', exit_code: 3, error: 'first line\nsecond line' }),
      rec({ end: now - 1000, outcome: 'done' }),
      rec({ end: now - 500, outcome: 'failed', action: 'dropped', signal: 'SIGKILL', exit_code: null, id: 'newest' }),
      rec({ end: now - 100, outcome: 'done', queue: 'other' }),
    ]);
    const current = new Map([
      ['q', { ready: 10, delayed: 2, in_flight: 3, expired: 0, corrupt: 1 }],
      ['other', { ready: 0, delayed: 0, in_flight: 0, expired: 0, corrupt: 0 }],
    ]);
    const workers = [
      presence({ host: 'h2', running_count: 1, concurrency: 2 }),
      presence({ host: 'h1', pid: 7 }),
      presence({ host: 'h1', pid: 8, running_count: 4 }),
      presence({ host: 'h1', pid: 9, active: false }),
      presence({ host: 'h3', queue: 'elsewhere' }),
    ];
    const frame = history.frame(now, ['q'], current, workers);
    assert.equal(frame.total, null, 'one queue: no total row');
    const [q] = frame.queues;
    assert.deepEqual(
      { ready: q!.ready, delayed: q!.delayed, in_flight: q!.in_flight, corrupt: q!.corrupt, dead: q!.dead },
      { ready: 10, delayed: 2, in_flight: 3, corrupt: 1, dead: 2 },
    );
    assert.deepEqual(
      q!.chart.map((b) => [b.minute.slice(11, 16), b.done, b.failed]),
      [
        ['12:26', 1, 0],
        ['12:27', 2, 0],
        ['12:28', 0, 1],
        ['12:29', 0, 0],
        ['12:30', 1, 1],
      ],
    );
    // Over the 10-minute rate window the records span from the first one's start (4 min 1 s ago) to now.
    const span = (4 * MIN + 1000) / MIN;
    assert.equal(q!.done_per_minute, Math.round((4 / span) * 100) / 100);
    assert.equal(q!.failed_per_minute, Math.round((2 / span) * 100) / 100); // the dead-lettered one is older than the rate window
    assert.equal(q!.eta_seconds, Math.round((15 / (4 / span)) * 60));
    assert.deepEqual(frame.hosts, [
      { host: 'h1', workers: 2, running: 6, slots: 8 },
      { host: 'h2', workers: 1, running: 1, slots: 2 },
    ]);
    assert.equal(frame.workers_silent, 1);
    assert.deepEqual(
      frame.failures.map((f) => f.id),
      ['newest', `id${now - 2 * MIN}`],
      'newest first; the one older than the window is gone, records of other queues are not shown',
    );
    const both = history.frame(now, ['q', 'other'], current, workers);
    assert.equal(both.total?.queue, '*');
    assert.equal(both.total?.ready, 10);
    assert.equal(both.total?.dead, 2);
    assert.equal(both.total?.chart.at(-1)?.done, 2);
  });

  it('sparkline: blank for nothing, the full bar for the largest, the lowest bar for any non-zero value', () => {
    assert.equal(sparkline([0, 1, 4, 8, 100], 8), ' ▁▄██');
    assert.equal(sparkline([0, 0]), '  ');
    assert.equal(sparkline([1, 1000]), '▁█');
  });
});

describe('ddmq top', () => {
  async function farm() {
    const root = join(tempDir(), 'root');
    const broker = await Broker.open(root, { create: true });
    await broker.createQueue('jobs', { retry_delay: 0, requeue_limit: 1 });
    await broker.createQueue('idle');
    for (let i = 0; i < 6; i++) await broker.publish('jobs', { n: i });
    return { root, broker };
  }

  it('--once prints one frame, plain and JSON, with what ddmq work did', async () => {
    const { root } = await farm();
    // Odd n fail every time: retried once (requeue_limit 1), then dropped.
    const task = 'n=$(printf %s "$1" | tr -dc 0-9); [ $((n % 2)) -eq 0 ] || { echo "odd $n" >&2; exit 5; }';
    const w = cli('work', root, 'jobs', '--idle-exit', '1', '--', 'sh', '-c', task, 'sh', '{}');
    assert.equal(w.status, 6, w.stderr);

    const json = cli('top', root, '--once', '--format', 'json');
    assert.equal(json.status, 0, json.stderr);
    const lines = json.stdout.trim().split('\n');
    assert.equal(lines.length, 1, 'one frame, one line');
    const frame = JSON.parse(lines[0]!);
    assert.deepEqual(frame.queues.map((q: { queue: string }) => q.queue), ['idle', 'jobs']);
    const jobs = frame.queues[1];
    assert.deepEqual([jobs.ready, jobs.delayed, jobs.in_flight, jobs.dead], [0, 0, 0, 3]);
    const chart = jobs.chart as { done: number; failed: number }[];
    assert.equal(chart.length, 30);
    assert.deepEqual([chart.reduce((n, b) => n + b.done, 0), chart.reduce((n, b) => n + b.failed, 0)], [3, 6], 'three done; three failures retried, three dropped');
    assert.equal(frame.total.queue, '*');
    assert.equal(frame.failures.length, 6);
    assert.ok(frame.failures.every((f: { exit_code: number; queue: string }) => f.exit_code === 5 && f.queue === 'jobs'));
    assert.deepEqual(frame.hosts, [], 'the worker has ended: its presence file is gone');
    assert.deepEqual(ls(join(root, '.ddmq', 'workers')), []);

    const plain = cli('top', root, 'jobs', '--once', '--minutes', '5');
    assert.equal(plain.status, 0, plain.stderr);
    const out = plain.stdout;
    assert.match(out, /^ddmq top .*root {2}\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\n/);
    assert.match(out, /^queue +ready +delayed +in flight +dead +done\/min +failed\/min +ETA$/m);
    assert.match(out, /^jobs +0 +0 +0 +3 +[\d.]+ +[\d.]+ +0s$/m);
    assert.doesNotMatch(out, /^idle /m, 'only the queue asked for');
    assert.match(out, /^jobs +done +\|[ ▁-█]{5}\| max \d+\/min$/m, 'five minutes of chart');
    assert.match(out, /^ +failed \|[ ▁-█]{5}\|$/m);
    assert.match(out, /^workers: none at work$/m);
    assert.equal((out.match(/^ {2}\d\d:\d\d:\d\d jobs \S+ attempt [12] exit 5 on \S+, (requeued|dropped): exit code 5$/gm) ?? []).length, 6, out);
  });

  it('shows the workers at work by host, with their running tasks and slots, and a silent one', async () => {
    const { root } = await farm();
    const child = spawn(process.execPath, [CLI, 'work', root, 'jobs', '-j', '3', '--', 'sleep', '30'], { stdio: 'ignore' });
    try {
      // The presence file is rewritten within 3 s of tasks starting, well before its 15 s beat.
      const reader = await Broker.open(root);
      const deadline = Date.now() + 9000;
      while (!(await reader.workers()).some((w) => w.running_count === 3)) {
        assert.ok(Date.now() < deadline, 'the presence file tells of the running tasks within seconds');
        await sleep(100);
      }
      const frame = JSON.parse(cli('top', root, 'jobs', '--once', '--format', 'json').stdout) as { hosts: { host: string; workers: number; running: number; slots: number }[]; queues: { in_flight: number }[] };
      assert.equal(frame!.hosts.length, 1);
      assert.deepEqual([frame!.hosts[0]!.workers, frame!.hosts[0]!.running, frame!.hosts[0]!.slots], [1, 3, 3]);
      assert.equal(frame!.queues[0]!.in_flight, 3);
      assert.match(cli('top', root, 'jobs', '--once').stdout, /^host +workers +running +slots\n\S+ +1 +3 +3$/m);

      // Killed, it leaves its file; a minute later it is silent, not at work.
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      const [file] = ls(join(root, '.ddmq', 'workers'));
      assert.ok(file, 'a killed worker leaves its presence file');
      const later = await Broker.open(root, { now: () => Date.now() + PRESENCE_ACTIVE_MS + 1000 });
      const [w] = await later.workers();
      assert.equal(w!.active, false);
      assert.equal(w!.running_count, 3);
      // An hour on, clean removes it.
      setMtime(join(root, '.ddmq', 'workers', file!), 3600_000 + 60_000);
      assert.equal(cli('clean', root).status, 0);
      assert.deepEqual(ls(join(root, '.ddmq', 'workers')), []);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('a worker of a queue with history off keeps no presence file; one that stops removes its own', async () => {
    const root = join(tempDir(), 'root');
    const broker = await Broker.open(root, { create: true });
    await broker.createQueue('quiet', { history: false });
    await broker.createQueue('loud');
    const dir = join(root, '.ddmq', 'workers');
    const quiet = work(broker, 'quiet', () => sleep(50));
    const loud = work(broker, 'loud', () => sleep(50));
    await sleep(300);
    const files = ls(dir);
    assert.equal(files.length, 1);
    assert.equal(JSON.parse(fs.readFileSync(join(dir, files[0]!), 'utf8')).queue, 'loud');
    await Promise.all([quiet.stop(), loud.stop()]);
    assert.deepEqual(ls(dir), []);
  });

  it('a link in place of .ddmq/workers is never followed: not written through, refused by top, not cleaned', async () => {
    const { root } = await farm();
    const canary = join(tempDir(), 'canary');
    fs.mkdirSync(canary);
    const planted = join(canary, 'evil-1-1.json');
    fs.writeFileSync(planted, JSON.stringify({ host: 'evil', pid: 1, queue: 'jobs', started: 0, heartbeat: Date.now(), concurrency: 9, running_count: 9, running: [], done: 0, failed: 0, released: 0, lease_lost: 0 }));
    setMtime(planted, 2 * 3600_000);
    fs.mkdirSync(join(root, '.ddmq'), { recursive: true });
    fs.symlinkSync(canary, join(root, '.ddmq', 'workers'));
    const w = cli('work', root, 'jobs', '--max-messages', '1', '--', 'true');
    assert.equal(w.status, 0);
    assert.match(w.stderr, /warning: worker presence file could not be kept: .*workers.* is a symbolic link/);
    const top = cli('top', root, '--once', '--format', 'json');
    assert.equal(top.status, 2, 'refused, as a link anywhere in the tree is');
    assert.match(top.stderr, /^ddmq: error: refusing to use \S+\/\.ddmq\/workers: it is a symbolic link/m);
    assert.equal(top.stdout, '');
    const clean = cli('clean', root);
    assert.match(clean.stderr, /worker presence files not pruned: .*symbolic link/);
    assert.deepEqual(fs.readdirSync(canary), ['evil-1-1.json'], 'nothing written into or removed from the canary');
  });

  it('a terminal run: the alternate screen, frames redrawn in place, q quits and restores the screen', async () => {
    const { root } = await farm();
    const typescript = join(tempDir(), 'typescript');
    // script gives top a terminal; q is typed after a few frames.
    const child = spawn('script', ['-q', '-e', '-c', `"${process.execPath}" "${CLI}" top "${root}" --interval 0.3`, typescript], { stdio: ['pipe', 'ignore', 'inherit'] });
    await sleep(2500);
    child.stdin.write('q');
    const exited = new Promise<number | null>((r) => child.once('exit', r));
    const code = await Promise.race([exited, sleep(10_000).then(() => 'still running' as const)]);
    if (code === 'still running') child.kill('SIGKILL');
    assert.equal(code, 0, 'q quits');
    const screen = fs.readFileSync(typescript, 'utf8');
    assert.ok(screen.includes('\x1b[?1049h\x1b[?25l'), 'takes the alternate screen and hides the cursor');
    const frames = screen.split('\x1b[Hddmq top ').length - 1;
    assert.ok(frames >= 2, `redrawn in place (${frames} frames)`);
    assert.match(screen, /jobs +6 +0 +0 +0/);
    assert.ok(screen.trimEnd().endsWith('\x1b[?25h\x1b[?1049l') || screen.includes('\x1b[?25h\x1b[?1049l'), 'gives the screen back');
    assert.ok(screen.indexOf('\x1b[?25h\x1b[?1049l') > screen.lastIndexOf('\x1b[Hddmq top '), 'after the last frame');
  });

  it('on a terminal in a shell: Ctrl-Z gives the terminal back and stops it, fg takes it again, Ctrl-\\ quits (0), SIGQUIT ends it (131)', async () => {
    const { root } = await farm();
    const TAKE = '\x1b[?1049h\x1b[?25l';
    const GIVE = '\x1b[?25h\x1b[?1049l';
    const typescript = join(tempDir(), 'typescript');
    // An interactive shell, so that top runs as a job the shell can stop and continue.
    const shell = spawn('script', ['-q', '-f', '-c', 'bash --norc --noprofile -i', typescript], { stdio: ['pipe', 'ignore', 'inherit'] });
    const screen = () => fs.readFileSync(typescript, 'utf8');
    const last = () => screen().slice(Math.max(screen().lastIndexOf(TAKE), screen().lastIndexOf(GIVE)));
    const until = async (what: string, ok: () => boolean) => {
      for (let i = 0; i < 100 && !ok(); i++) await sleep(100);
      assert.ok(ok(), what + ': ' + JSON.stringify(last().slice(0, 300)) + JSON.stringify(last().slice(-300)));
    };
    const startTop = async () => {
      const before = screen().split(TAKE).length;
      shell.stdin.write(`"${process.execPath}" "${CLI}" top "${root}" --interval 0.3; echo "top-exit=$?"\n`);
      await until('top takes the screen', () => screen().split(TAKE).length > before && last().includes('\x1b[Hddmq top '));
      return Number(spawnSync('pgrep', ['-f', `top ${root} --interval`], { encoding: 'utf8' }).stdout.trim());
    };
    const state = (pid: number) => fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]![0];
    try {
      await sleep(300);
      let top = await startTop();
      shell.stdin.write('\x1a');
      await until('Ctrl-Z stops top', () => state(top) === 'T');
      await until('the terminal is given back while it is stopped', () => last().startsWith(GIVE) && last().includes('Stopped'));
      shell.stdin.write('fg\n');
      await until('fg: the screen is taken again and drawn', () => state(top) !== 'T' && last().startsWith(TAKE) && last().includes('\x1b[Hddmq top '));
      shell.stdin.write('\x1c');
      await until('Ctrl-\\ quits and gives the screen back', () => !fs.existsSync(`/proc/${top}`) && last().startsWith(GIVE));
      shell.stdin.write('echo "fg-exit=$?"\n');
      await until('with exit code 0', () => screen().includes('fg-exit=0'));
      top = await startTop();
      process.kill(top, 'SIGQUIT');
      await until('SIGQUIT ends it with 131', () => screen().includes('top-exit=131'));
      assert.ok(last().startsWith(GIVE), 'and gives the screen back');
    } finally {
      shell.stdin.write('exit\n');
      await sleep(200);
      shell.kill('SIGKILL');
    }
  });

  it('not on a terminal: a frame every interval (JSON: one per line) until SIGINT, exit 0', async () => {
    const { root } = await farm();
    const child = spawn(process.execPath, [CLI, 'top', root, '--format', 'json', '--interval', '0.2'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    for (let i = 0; i < 100 && out.split('\n').length < 4; i++) await sleep(100);
    child.kill('SIGINT');
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    assert.equal(code, 0);
    const frames = out.trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(frames.length >= 3);
    assert.ok(frames.every((f) => f.queues.length === 2));
    assert.ok(frames[1].now > frames[0].now);
  });

  it('bad options and queue names are refused with a clear error', async () => {
    const { root } = await farm();
    for (const [args, pattern] of [
      [['--interval', '0'], /invalid --interval "0": expected seconds, from 0.2 to 3600/],
      [['--interval', '1e3'], /invalid --interval "1e3"/],
      [['--minutes', '0'], /invalid --minutes 0/],
      [['--format', 'yaml'], /--format/],
      [['../x', '--once'], /queue name/],
    ] as [string[], RegExp][]) {
      const r = cli('top', root, ...args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, pattern);
      assert.doesNotMatch(r.stderr, /    at /, 'no stack trace');
    }
    const missing = cli('top', root, 'nosuch,jobs', '--once');
    assert.equal(missing.status, 7, 'one of two queues could not be shown');
    assert.match(missing.stderr, /^ddmq: error: queue nosuch does not exist/m);
    assert.match(missing.stdout, /^nosuch +- +- +- +0 +0 +0 +-$/m, missing.stdout);
    assert.match(missing.stdout, /^jobs +6 /m);
    const only = cli('top', root, 'nosuch', '--once', '--format', 'json');
    assert.equal(only.status, 2);
    assert.equal(JSON.parse(only.stdout).queues[0].ready, null);
  });
});

describe('record tail', () => {
  it('each poll returns only what was appended since the last; a half-written line waits for its end', async () => {
    const root = join(tempDir(), 'root');
    const broker = await Broker.open(root, { create: true });
    await broker.createQueue('q');
    const tail = new RecordTail(root, () => Date.now());
    assert.deepEqual(tail.poll(['q']), []);
    for (let i = 0; i < 3; i++) await broker.publish('q', i);
    for (const m of await broker.consume('q', { n: 2 })) await broker.ack(m);
    broker.close(); // writes the records
    assert.equal(tail.poll(['q']).length, 2);
    assert.equal(tail.poll(['q']).length, 0, 'nothing new');
    const [file] = ls(join(root, '.ddmq', 'records', 'q'));
    const path = join(root, '.ddmq', 'records', 'q', file!);
    const line = fs.readFileSync(path, 'utf8').split('\n')[0]!;
    fs.appendFileSync(path, line.slice(0, 20));
    assert.equal(tail.poll(['q']).length, 0, 'a half line is not a record yet');
    fs.appendFileSync(path, line.slice(20) + '\n');
    const [whole] = tail.poll(['q']);
    assert.equal(whole?.id, JSON.parse(line).id);
  });

  it('a file whose writer has moved on is read once and not looked at again', async () => {
    const root = join(tempDir(), 'root');
    const broker = await Broker.open(root, { create: true });
    await broker.createQueue('q');
    const dir = join(root, '.ddmq', 'records', 'q');
    fs.mkdirSync(dir, { recursive: true });
    const line = JSON.stringify(rec({ end: 1, outcome: 'done' })) + '\n';
    const old = join(dir, `h-1-${Date.now() - 3 * 3600_000}.jsonl`);
    fs.writeFileSync(old, line);
    const longAgo = new Date(Date.now() - 2 * 3600_000);
    fs.utimesSync(old, longAgo, longAgo); // last written two hours ago
    const tail = new RecordTail(root, () => Date.now());
    assert.equal(tail.poll(['q']).length, 1);
    fs.appendFileSync(old, line);
    assert.equal(tail.poll(['q']).length, 0, 'an old file is not read again');
    const live = join(dir, `h-1-${Date.now()}.jsonl`);
    fs.writeFileSync(live, line);
    assert.equal(tail.poll(['q']).length, 1);
    fs.appendFileSync(live, line);
    assert.equal(tail.poll(['q']).length, 1, 'a live file is followed');
    // A writer whose clock is three hours behind names its file three hours ago; it is written now.
    const behind = join(dir, `h-3-${Date.now() - 3 * 3600_000}.jsonl`);
    fs.writeFileSync(behind, line);
    assert.equal(tail.poll(['q']).length, 1);
    fs.appendFileSync(behind, line);
    assert.equal(tail.poll(['q']).length, 1, 'the file of a writer with a clock behind is followed by its modification time');
    fs.symlinkSync('/etc/passwd', join(dir, `h-2-${Date.now()}.jsonl`));
    assert.equal(tail.poll(['q']).length, 0, 'a link under a record file name is not followed');
  });
});

/** A root with queue q and its (empty) records folder, to plant record files in. */
async function rootWithRecordsFolder() {
  const root = join(tempDir(), 'root');
  const broker = await Broker.open(root, { create: true });
  await broker.createQueue('q');
  broker.close();
  const dir = join(root, '.ddmq', 'records', 'q');
  fs.mkdirSync(dir, { recursive: true });
  return { root, dir };
}

describe('top and stats against hostile records', () => {
  it('a failure record ending in the year 275760+ (end 1e300) does not crash top; --since beyond a date is refused', async () => {
    const { root, dir } = await rootWithRecordsFolder();
    const r = { queue: 'q', id: 'i', host: 'h', pid: 1, start: null, end: 1e300, runtime_ms: null, outcome: 'failed', action: 'requeued', exit_code: 1, signal: null, attempt: 1, error: 'e' };
    fs.writeFileSync(join(dir, 'h-1-1.jsonl'), JSON.stringify(r) + '\n');
    const top = spawnSync(process.execPath, [CLI, 'top', root, '--once'], { encoding: 'utf8' });
    assert.equal(top.status, 0, top.stderr);
    assert.match(top.stdout, /latest failures: none/);
    for (const since of ['999999999d', '99999999999999999999d']) {
      const s = spawnSync(process.execPath, [CLI, 'stats', root, '--since', since], { encoding: 'utf8' });
      assert.equal(s.status, 2, s.stderr);
      assert.match(s.stderr, /^ddmq: error: --since/);
      assert.doesNotMatch(s.stderr, /internal error/);
    }
  });

  it('escape sequences in records and presence files (host, error, signal) are shown as \\xNN, never sent to the terminal', async () => {
    const { root, dir } = await rootWithRecordsFolder();
    const evil = '\x1b]0;pwned\x07\x1b[2J\x9b1m';
    const r = { queue: 'q', id: 'i', host: `h${evil}`, pid: 1, start: null, end: Date.now(), runtime_ms: null, outcome: 'failed', action: 'requeued', exit_code: null, signal: `S${evil}`, attempt: 1, error: `boom${evil}` };
    fs.writeFileSync(join(dir, `h-1-${Date.now()}.jsonl`), JSON.stringify(r) + '\n');
    const workers = join(root, '.ddmq', 'workers');
    fs.mkdirSync(workers, { recursive: true });
    const p = { host: `w${evil}`, pid: 1, queue: 'q', started: Date.now(), heartbeat: Date.now(), concurrency: 1, running_count: 0, running: [], done: 0, failed: 0, released: 0, lease_lost: 0 };
    fs.writeFileSync(join(workers, `w-1-${Date.now()}.json`), JSON.stringify(p));
    const top = spawnSync(process.execPath, [CLI, 'top', root, '--once'], { encoding: 'utf8' });
    assert.equal(top.status, 0, top.stderr);
    const stats = spawnSync(process.execPath, [CLI, 'stats', root], { encoding: 'utf8' });
    assert.equal(stats.status, 0, stats.stderr);
    for (const out of [top.stdout, stats.stdout]) {
      assert.doesNotMatch(out, /[\x00-\x09\x0b-\x1f\x7f-\x9f]/, out);
      assert.match(out, /boom\\x1b\]0;pwned\\x07/);
    }
    assert.match(top.stdout, /^w\\x1b/m, 'the worker host, escaped');
  });
});
