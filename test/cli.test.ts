/** The built `ddmq` command, run as a child process: every command, format and exit code. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { CLI, ls, REPO, tempDir } from './helpers.js';

interface Run {
  code: number;
  out: string;
  err: string;
}

function ddmq(...args: string[]): Run {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

function jsonLines(out: string): Record<string, unknown>[] {
  return out
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** A user mistake gets one clear line, never a stack trace. */
function assertCleanError(r: Run, code: number, pattern: RegExp): void {
  assert.equal(r.code, code, `exit code; stderr: ${r.err}`);
  assert.match(r.err, pattern);
  assert.doesNotMatch(r.err, /\n\s+at /, 'no stack trace');
}

function setup(): { root: string } {
  const root = join(tempDir(), 'root');
  assert.equal(ddmq('create', '-f', root, 'q').code, 0);
  return { root };
}

describe('ddmq: help and version', () => {
  it('prints help with the commands and exit codes, and the version', () => {
    const help = ddmq('--help');
    assert.equal(help.code, 0);
    for (const c of ['view', 'create', 'delete', 'publish', 'consume', 'ack', 'nack', 'del_msg', 'peek', 'purge', 'clean', 'redrive', 'settings', 'work', 'json']) assert.match(help.out, new RegExp(`\\b${c}\\b`));
    assert.match(help.out, /Exit codes/);
    const version = JSON.parse(fs.readFileSync(join(REPO, 'package.json'), 'utf8')).version;
    assert.equal(ddmq('--version').out.trim(), `ddmq version ${version}`);
    assert.equal(ddmq('-v').out.trim(), `ddmq version ${version}`);
    assert.equal(ddmq('publish', '-h').code, 0);
    assert.match(ddmq('publish', '-h').out, /--requeue_limit/);
    assert.equal(ddmq().code, 2);
    assertCleanError(ddmq('bogus'), 2, /unknown command 'bogus'/);
    assertCleanError(ddmq('publish', '/tmp'), 2, /missing required argument/);
    assertCleanError(ddmq('view', '/tmp', '--nope'), 2, /unknown option '--nope'/);
  });
});

describe('ddmq create, view, delete', () => {
  it('create and view in every format', () => {
    const root = join(tempDir(), 'root');
    assertCleanError(ddmq('create', root, 'a'), 2, /root folder .* does not exist/);
    let r = ddmq('create', '-f', root, 'a,b');
    assert.deepEqual([r.code, r.out], [0, 'created queue a\ncreated queue b\n']);
    assert.equal(ddmq('create', root, 'a').out, 'queue a exists already\n');
    assert.deepEqual(jsonLines(ddmq('create', root, 'c', '--format', 'json').out), [{ queue: 'c', created: true }]);
    assert.equal(ddmq('create', root, 'd', '-s').out, '');
    // One bad name in the list: nothing is created.
    assertCleanError(ddmq('create', root, 'e,../x'), 2, /invalid queue name "..\/x"/);
    assert.deepEqual(ls(root), ['a', 'b', 'c', 'd', 'ddmq.yaml']);

    ddmq('publish', root, 'a', 'm1');
    ddmq('publish', root, 'a', 'm2');
    ddmq('consume', root, 'a');
    r = ddmq('view', root);
    assert.equal(r.code, 0);
    assert.match(r.out, /^queue\s+ready\s+delayed\s+in flight\s+expired\s+corrupt\na\s+1\s+0\s+1\s+0\s+0\n/);
    assert.deepEqual(jsonLines(ddmq('view', root, 'a,b', '--format', 'json').out), [
      { queue: 'a', ready: 1, delayed: 0, in_flight: 1, expired: 0, corrupt: 0 },
      { queue: 'b', ready: 0, delayed: 0, in_flight: 0, expired: 0, corrupt: 0 },
    ]);
    assert.deepEqual(parseYaml(ddmq('view', root, 'a', '--format', 'yaml').out), [{ queue: 'a', ready: 1, delayed: 0, in_flight: 1, expired: 0, corrupt: 0 }]);
    assert.equal(ddmq('view', root, 'a', '--format', 'plain').out, 'a 1 0 1 0 0\n');
    assert.equal(ddmq('view', root, '-n').out, 'a\nb\nc\nd\n');
    // Some of the named queues shown, some missing: exit 7 (all missing: 2).
    r = ddmq('view', root, 'a,zz');
    assert.equal(r.code, 7);
    assert.match(r.out, /^a\s/m);
    assert.match(r.err, /queue zz does not exist/);
    assertCleanError(ddmq('view', root, '--format', 'xml'), 2, /Allowed choices are table, plain, json, yaml/);
  });

  it('delete removes queues; a missing one is an error', () => {
    const { root } = setup();
    ddmq('publish', root, 'q', 'x');
    assert.equal(ddmq('delete', root, 'q').out, 'deleted queue q\n');
    assert.deepEqual(ls(root), ['ddmq.yaml']);
    assertCleanError(ddmq('delete', root, 'q'), 2, /queue q does not exist/);
  });

  it('refuses a root that is missing or not initialised', () => {
    const dir = tempDir();
    assertCleanError(ddmq('view', join(dir, 'none')), 2, /does not exist/);
    assertCleanError(ddmq('view', dir), 2, /not initialised/);
    assert.equal(ddmq('view', '-f', dir).code, 0);
  });
});

describe('ddmq publish and consume', () => {
  it('publish prints what it wrote; consume prints JSON by default, plain and yaml on request', () => {
    const { root } = setup();
    let r = ddmq('publish', root, 'q', 'hello world', '-p', '3');
    assert.equal(r.code, 0);
    assert.match(r.out, /^published q\/3\.\d{20}\.ddmq[0-9a-f]{32}\n$/);
    r = ddmq('publish', root, 'q', '{"k": [1, 2]}', '--json-message', '--format', 'json', '-t', '60', '-l', '2', '--requeue_prio', '4');
    const pub = jsonLines(r.out)[0]!;
    assert.deepEqual([pub.message, pub.timeout, pub.requeue_limit, pub.requeue], [{ k: [1, 2] }, 60, 2, 4]);
    assert.equal(ddmq('publish', root, 'q', 'quiet', '-s').out, '');
    const noRequeue = jsonLines(ddmq('publish', root, 'q', 'x', '--no-requeue', '--format', 'json').out)[0]!;
    assert.equal(noRequeue.requeue, false);

    r = ddmq('consume', root, 'q');
    assert.equal(r.code, 0);
    const first = jsonLines(r.out);
    assert.equal(first.length, 1);
    assert.equal(first[0]!.message, 'hello world');
    assert.match(String(first[0]!.filename), /^\d+\.3\.\d{20}\.ddmq[0-9a-f]{44}$/);
    r = ddmq('consume', root, 'q', '--format', 'plain');
    assert.match(r.out, /^filename = .*\nid = .*\nmessage = \{"k":\[1,2\]\}\npriority = 999\n/);
    r = ddmq('consume', root, 'q', '-n', '5', '--format', 'yaml');
    assert.deepEqual((parseYaml(r.out) as { message: string }[]).map((m) => m.message), ['quiet', 'x']);
    r = ddmq('consume', root, 'q');
    assert.deepEqual([r.code, r.out], [3, '']);
    assert.match(r.err, /no messages in q/);
  });

  it('refuses bad values before writing anything', () => {
    const { root } = setup();
    assertCleanError(ddmq('publish', root, 'q', 'x', '-p', '-1'), 2, /priority -1/);
    assertCleanError(ddmq('publish', root, 'q', 'x', '-p', 'abc'), 2, /--priority must be a whole number/);
    assertCleanError(ddmq('publish', root, 'q', 'x', '-p', '99999999999999999999'), 2, /too large/);
    // The error names the flag typed (-t/--timeout), not the library's name for it (lease).
    assertCleanError(ddmq('publish', root, 'q', 'x', '-t', '0'), 2, /invalid --timeout 0/);
    assertCleanError(ddmq('consume', root, 'q', '-t', '0'), 2, /invalid --timeout 0/);
    assertCleanError(ddmq('publish', root, 'q', '{bad', '--json-message'), 2, /not valid JSON/);
    const lastWins = (...flags: string[]) => jsonLines(ddmq('publish', root, 'q', 'x', ...flags, '--format', 'json').out)[0]!.requeue;
    assert.equal(lastWins('-r', '--no-requeue'), false);
    assert.equal(lastWins('--no-requeue', '-r'), true);
    ddmq('purge', root, 'q', '-s');
    assertCleanError(ddmq('publish', root, 'no_such', 'x'), 2, /queue no_such does not exist/);
    assertCleanError(ddmq('publish', root, '../escape', 'x'), 2, /invalid queue name/);
    assertCleanError(ddmq('consume', root, 'q', '-n', '0'), 2, /invalid n 0/);
    assert.deepEqual(ls(join(root, 'q')), ['ddmq.yaml', 'work']);
    assert.equal(ddmq('publish', '-f', root, 'made', 'x').code, 0);
    assert.equal(ls(join(root, 'made')).length, 3);
  });

  it('keeps stdout pure JSON with -v and -d; logs go to stderr', () => {
    const { root } = setup();
    ddmq('publish', root, 'q', 'a');
    const r = ddmq('consume', root, 'q', '-d');
    assert.equal(jsonLines(r.out).length, 1);
    assert.match(r.err, /ddmq: debug: listed q/);
  });

  it('exit 4 when the file system refuses', () => {
    assertCleanError(ddmq('view', join(tempDir(), 'x'.repeat(300))), 4, /the name is too long \(ENAMETOOLONG\)/);
  });

  it('exit 2 for a planted entry where a folder must be', () => {
    const { root } = setup();
    fs.rmdirSync(join(root, 'q', 'work'));
    fs.writeFileSync(join(root, 'q', 'work'), 'in the way');
    assertCleanError(ddmq('consume', root, 'q'), 2, /refusing to use .*work: it is not a folder/);
  });
});

describe('ddmq ack, nack, del_msg', () => {
  function consumed(root: string, n: number): string[] {
    for (let i = 0; i < n; i++) ddmq('publish', root, 'q', `m${i}`);
    return jsonLines(ddmq('consume', root, 'q', '-n', String(n)).out).map((m) => String(m.filename));
  }

  it('ack deletes, says so, and exits 5 for a message no longer in flight', () => {
    const { root } = setup();
    const [a, b] = consumed(root, 2);
    let r = ddmq('ack', root, 'q', `${a},${b}`);
    assert.equal(r.code, 0);
    assert.equal(r.out, `acked ${join(root, 'q', 'work', a!)}\nacked ${join(root, 'q', 'work', b!)}\n`);
    r = ddmq('ack', root, 'q', a!);
    assertCleanError(r, 5, /is not in flight/);
  });

  it('ack, nack and del_msg refuse paths before touching any file', () => {
    const { root } = setup();
    const [a] = consumed(root, 1);
    for (const cmd of ['ack', 'nack', 'del_msg']) {
      for (const bad of [`../${a}`, `/etc/passwd`, `${a}/..`, '..', `work/${a}`]) {
        assertCleanError(ddmq(cmd, root, 'q', `${a},${bad}`), 2, /invalid message file name/);
      }
    }
    assert.deepEqual(ls(join(root, 'q', 'work')), [a]);
  });

  it('nack requeues by default, drops with --drop, requeues with -r; json output', () => {
    const { root } = setup();
    ddmq('settings', root, 'q', '--set', 'retry_delay=0');
    const [a, b] = consumed(root, 2);
    let r = ddmq('nack', root, 'q', a!, '--format', 'json');
    const row = jsonLines(r.out)[0]!;
    assert.deepEqual([row.action, row.filename], ['requeued', a]);
    assert.match(String(row.requeued_as), /^0\.\d{20}\.ddmq/);
    r = ddmq('nack', root, 'q', b!, '--drop');
    assert.equal(r.out, `dropped q/work/${b}\n`);
    const [c] = jsonLines(ddmq('consume', root, 'q').out).map((m) => String(m.filename));
    assert.match(ddmq('ack', root, 'q', c!, '-r').out, /^requeued /);
    assertCleanError(ddmq('nack', root, 'q', c!, '-r', '--drop'), 2, /contradict/);
    assert.equal(ddmq('nack', root, 'q', c!).code, 5);
  });

  it('del_msg deletes ready and in-flight messages by name', () => {
    const { root } = setup();
    const [a] = consumed(root, 1);
    const ready = jsonLines(ddmq('publish', root, 'q', 'r', '--format', 'json').out)[0]!.filename as string;
    const r = ddmq('del_msg', root, 'q', `${a},${ready}`);
    assert.equal(r.code, 0);
    assert.deepEqual(ls(join(root, 'q')), ['ddmq.yaml', 'work']);
    assert.deepEqual(ls(join(root, 'q', 'work')), []);
    assertCleanError(ddmq('del_msg', root, 'q', ready), 5, /no message/);
  });
});

describe('ddmq purge, clean, settings', () => {
  it('purge and clean report what they did', () => {
    const { root } = setup();
    ddmq('create', root, 'other');
    ddmq('publish', root, 'q', 'a');
    ddmq('publish', root, 'q', 'b', '-t', '1');
    ddmq('consume', root, 'q', '-n', '2');
    fs.writeFileSync(join(root, 'q', 'work', '1.999.17000000000000000000.ddmq0123456789abcdef0123456789abcdef'), '{"message":"expired"}');
    assert.deepEqual(jsonLines(ddmq('clean', root, '--format', 'json').out), [
      { queue: 'other', requeued: 0, dropped: 0, dead_lettered: 0, corrupt: 0, temps_removed: 0 },
      { queue: 'q', requeued: 1, dropped: 0, dead_lettered: 0, corrupt: 0, temps_removed: 0 },
    ]);
    assert.equal(ddmq('clean', root, 'q').out, 'cleaned q (0 requeued, 0 dropped, 0 dead-lettered, 0 corrupt)\n');
    assert.equal(ddmq('purge', root, 'q').out, 'purged q (1 ready, 0 delayed, 2 in flight)\n');
    // One of two queues missing: the other is purged, exit 7; all missing: exit 2.
    const r = ddmq('purge', root, 'q,nope');
    assert.equal(r.code, 7);
    assert.equal(r.out, 'purged q (0 ready, 0 delayed, 0 in flight)\n');
    assert.match(r.err, /queue nope does not exist/);
    assertCleanError(ddmq('purge', root, 'nope'), 2, /queue nope does not exist/);
  });

  it('settings shows where each value comes from and changes the ddmq.yaml', () => {
    const { root } = setup();
    let r = ddmq('settings', root, '--set', 'priority=5');
    assert.match(r.out, /^priority: 5 {2}\(root\)$/m);
    r = ddmq('settings', root, 'q', '--set', 'message_timeout=30', '--set', 'requeue=no', '--format', 'json');
    const rows = Object.fromEntries(jsonLines(r.out).map((x) => [x.key, [x.value, x.from]]));
    assert.deepEqual(rows.message_timeout, [30, 'queue']);
    assert.deepEqual(rows.requeue, [false, 'queue']);
    assert.deepEqual(rows.priority, [5, 'root']);
    assert.deepEqual(rows.fsync, [false, 'default']);
    assert.equal(fs.readFileSync(join(root, 'q', 'ddmq.yaml'), 'utf8'), 'message_timeout: 30\nrequeue: false\n');
    ddmq('settings', root, 'q', '--unset', 'requeue', '-s');
    assert.equal(fs.readFileSync(join(root, 'q', 'ddmq.yaml'), 'utf8'), 'message_timeout: 30\n');
    assertCleanError(ddmq('settings', root, 'q', '--set', 'priority=abc'), 2, /invalid setting "priority"/);
    assertCleanError(ddmq('settings', root, 'q', '--set', 'colour=red'), 2, /KEY one of/);
  });
});

describe('ddmq json', () => {
  it('runs commands from a JSON object, "cmd" or "command", any JSON message', () => {
    const { root } = setup();
    let r = ddmq('json', JSON.stringify({ cmd: 'publish', root, queue: 'q', message: { file: 'a.txt' }, priority: 2, format: 'json' }));
    assert.equal(r.code, 0);
    assert.deepEqual(jsonLines(r.out)[0]!.message, { file: 'a.txt' });
    r = ddmq('json', JSON.stringify({ command: 'consume', root, queue: 'q', n: 2 }));
    assert.deepEqual(jsonLines(r.out)[0]!.message, { file: 'a.txt' });
    r = ddmq('json', JSON.stringify({ cmd: 'ack', root, queue: 'q', msg_files: [jsonLines(r.out)[0]!.filename] }));
    assert.equal(r.code, 0);
    r = ddmq('json', JSON.stringify({ cmd: 'publish', root, queue: 'q', message: 'm', requeue: false, format: 'json', s: false }));
    assert.equal(jsonLines(r.out)[0]!.requeue, false);
    ddmq('purge', root, 'q');
    assert.equal(ddmq('json', JSON.stringify({ cmd: 'view', root, format: 'json' })).out, '{"queue":"q","ready":0,"delayed":0,"in_flight":0,"expired":0,"corrupt":0}\n');
  });

  it('validates the command, every key and every type; nothing is evaluated', () => {
    const { root } = setup();
    const cases: [unknown, RegExp][] = [
      [{ cmd: 'view; rm -rf /', root }, /unknown command "view; rm -rf \/"/],
      [{ cmd: 'constructor', root }, /unknown command/],
      [{ cmd: 'json', json_payload: '{}' }, /unknown command "json"/],
      [{ root }, /no "cmd" key/],
      [{ cmd: 'view', root, evil: 1 }, /unknown key "evil" for view/],
      [{ cmd: 'publish', root, queue: 'q', message: 'x', priority: '1' }, /"priority" must be a whole number/],
      [{ cmd: 'publish', root, queue: 'q', message: 'x', requeue: 'yes' }, /"requeue" must be true or false/],
      [{ cmd: 'publish', root, queue: 'q', message: 'x', requeue: true, no_requeue: true }, /contradict/],
      [{ cmd: 'publish', root, queue: 'q' }, /give either a MESSAGE or --file FILE/],
      [{ cmd: 'view' }, /needs the key "root"/],
      [{ cmd: 'view', root, format: 'xml' }, /"format" must be one of table, plain, json, yaml/],
      [{ cmd: 'view', root: 5 }, /"root" must be a string/],
      [{ cmd: 'publish', root, queue: '../x', message: 'x' }, /invalid queue name/],
      [[1, 2], /must be a JSON object/],
    ];
    for (const [payload, why] of cases) assertCleanError(ddmq('json', JSON.stringify(payload)), 2, why);
    assertCleanError(ddmq('json', '{not json'), 2, /not valid JSON/);
    assert.deepEqual(ls(join(root, 'q')), ['ddmq.yaml', 'work']);
  });
});
