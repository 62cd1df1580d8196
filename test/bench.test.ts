/**
 * The benchmark runs, and writes the JSON its README section describes. It asserts the
 * shape of the report, never a speed: performance is judged by `npm run bench`, not here.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { REPO, tempDir } from './helpers.js';

describe('npm run bench', () => {
  it('runs a quick selection and writes workloads with their floors, the CLI and the machine', () => {
    const out = join(tempDir(), 'latest.json');
    const r = spawnSync(process.execPath, [join(REPO, 'bench', 'run.mjs'), '--quick', '--only', '1,6', '--fs', 'tmpfs', '--out', out], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /\| W1 publish 5000, then consume\+ack them/);
    const report = JSON.parse(fs.readFileSync(out, 'utf8'));
    assert.equal(report.runs_per_figure, 5);
    assert.ok(report.machine.cores >= 1 && typeof report.machine.node === 'string');
    const w1 = report.workloads.find((w: { name: string }) => w.name.startsWith('W1'));
    for (const key of ['msgs_per_s', 'floor_msgs_per_s', 'ratio']) assert.ok(w1[key] > 0, key);
    assert.ok(Math.abs(w1.ratio - w1.msgs_per_s / w1.floor_msgs_per_s) < 0.01);
    assert.equal(report.cli.length, 2);
    assert.ok(report.cli.every((c: { ms: number; floor_ms: number }) => c.ms > 0 && c.floor_ms > 0));
  });
});
