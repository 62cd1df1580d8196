/**
 * Shared use: two users of one project group publish to and consume from one tree.
 * ddmq honours the umask; the `group_shared` setting adds group access (and setgid
 * folders) on top of it. Needs root to make the users (CI runs as root).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CLI } from './helpers.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot && process.env.CI) throw new Error('CI must run the shared-use tests as root');

const GROUP = 'ddmqtest';
const USERS = ['ddmqtest-a', 'ddmqtest-b'];
const ids: Record<string, { uid: number; gid: number }> = {};
let base: string;

function ensureUsers(): void {
  if (spawnSync('getent', ['group', GROUP]).status !== 0) execFileSync('groupadd', [GROUP]);
  for (const user of USERS) {
    if (spawnSync('id', [user]).status !== 0) {
      execFileSync('useradd', ['--no-create-home', '--gid', GROUP, '--shell', '/usr/sbin/nologin', user]);
    }
    ids[user] = {
      uid: Number(execFileSync('id', ['-u', user], { encoding: 'utf8' })),
      gid: Number(execFileSync('id', ['-g', user], { encoding: 'utf8' })),
    };
  }
}

/** Runs ddmq as a user, with a umask. */
function as(user: string, umask: string, ...args: string[]) {
  const r = spawnSync('sh', ['-c', `umask ${umask}; exec "$NODE" "$CLI" "$@"`, 'sh', ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH, NODE: process.execPath, CLI, HOME: '/tmp' },
    uid: ids[user]!.uid,
    gid: ids[user]!.gid,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const mode = (p: string) => fs.statSync(p).mode & 0o7777;

describe('shared use by a project group', { skip: isRoot ? false : 'needs root to create a second user' }, () => {
  before(() => {
    ensureUsers();
    base = fs.mkdtempSync(join(tmpdir(), 'ddmq-shared-'));
    fs.chmodSync(base, 0o1777); // like /tmp: the users make their trees in it
  });
  after(() => fs.rmSync(base, { recursive: true, force: true }));

  it('with group_shared, two users of one group both publish and consume, even with umask 077', () => {
    const [a, b] = USERS as [string, string];
    const root = join(base, 'shared');
    let r = as(a, '077', 'settings', '-f', root, '--set', 'group_shared=true', '--set', 'retry_delay=0', '-s');
    assert.equal(r.code, 0, r.err);
    assert.equal(as(a, '077', 'create', root, 'q').code, 0);
    assert.equal(as(a, '077', 'publish', root, 'q', 'from a').code, 0);
    assert.equal(as(b, '077', 'publish', root, 'q', 'from b').code, 0);
    // The group can read every file and write every folder; others get nothing (umask 077).
    for (const dir of [root, join(root, 'q'), join(root, 'q', 'work')]) {
      assert.equal(mode(dir) & 0o2070, 0o2070, `${dir} is group-writable and setgid`);
      assert.equal(mode(dir) & 0o007, 0, `${dir}: the umask still applies to others`);
      assert.equal(fs.statSync(dir).gid, ids[a]!.gid);
    }
    for (const f of fs.readdirSync(join(root, 'q')).filter((n) => n.includes('.ddmq'))) {
      assert.equal(mode(join(root, 'q', f)) & 0o060, 0o060, f);
    }
    r = as(b, '077', 'consume', root, 'q', '-n', '2');
    assert.equal(r.code, 0, r.err);
    const got = r.out.trim().split('\n').map((l) => JSON.parse(l) as { message: string; filename: string });
    assert.deepEqual(got.map((m) => m.message), ['from a', 'from b']);
    assert.equal(as(b, '077', 'nack', root, 'q', got[0]!.filename).code, 0, 'b requeues a message a published');
    assert.equal(as(a, '077', 'ack', root, 'q', got[1]!.filename).code, 0, 'a acks a message b consumed');
    r = as(a, '077', 'consume', root, 'q');
    assert.equal(JSON.parse(r.out).message, 'from a');
    assert.equal(as(b, '077', 'create', root, 'q2').code, 0, 'b can make queues in the shared root');
    assert.equal(as(a, '077', 'delete', root, 'q2').code, 0, 'and a can delete them');
  });

  it('without it, the umask rules: the other user is refused clearly (exit 4, EACCES)', () => {
    const [a, b] = USERS as [string, string];
    const root = join(base, 'private');
    assert.equal(as(a, '022', 'create', '-f', root, 'q').code, 0);
    assert.equal(mode(join(root, 'q')) & 0o777, 0o755);
    const r = as(b, '022', 'publish', root, 'q', 'from b');
    assert.equal(r.code, 4);
    assert.match(r.err, /permission denied \(EACCES\)/);
    assert.equal(as(b, '022', 'view', root).code, 0, 'reading is still allowed by 022');
  });
});
