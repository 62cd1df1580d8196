/** The README's first command runs scripts/demo.mjs: it must work, and show what it says. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { REPO, tempDir } from './helpers.js';

describe('the demonstration', () => {
  it('runs a task farm with a worker killed mid-run: every task runs, and only what the killed worker held runs twice', () => {
    const r = spawnSync(process.execPath, [join(REPO, 'scripts', 'demo.mjs'), join(tempDir(), 'ddmq-data')], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /killed worker 1 \(SIGKILL\)/);
    const tally = /(\d+) tasks run, 300 distinct of 300 \(\d+ reported done\); \d+ came back after the kill \(in flight then: (\d+)\)/.exec(r.stdout);
    assert.ok(tally, r.stdout);
    // At least once: a task of the killed worker may run again; nothing else does.
    assert.ok(Number(tally[1]) - 300 <= Number(tally[2]), r.stdout);
    assert.match(r.stdout, /worker 2: \d+ tasks done, exit 0/);
  });
});
