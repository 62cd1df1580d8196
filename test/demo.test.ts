/** The README's first command runs scripts/demo.mjs: it must work, and show what it says. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { REPO, tempDir } from './helpers.js';

describe('the demonstration', () => {
  it('runs a task farm with a worker killed mid-run, and every task is done exactly once', () => {
    const r = spawnSync(process.execPath, [join(REPO, 'scripts', 'demo.mjs'), join(tempDir(), 'ddmq-data')], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /killed worker 1 \(SIGKILL\)/);
    assert.match(r.stdout, /300 tasks done, 300 distinct of 300/);
    assert.match(r.stdout, /worker 2: \d+ tasks done, exit 0/);
  });
});
