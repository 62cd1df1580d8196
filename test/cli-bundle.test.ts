/**
 * The command users run is the bundle of scripts/bundle-cli.mjs: one file, built from the
 * sources as they are now, that loads for publish and consume nothing else of ours and
 * none of the modules they do not need. How fast it starts is the bench's (W6), not this.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Broker } from '../src/index.js';
import { CLI, REPO, staleInputs, tempDir } from './helpers.js';

const PROBE = join(REPO, 'test', 'fixtures', 'loaded-modules.cjs');

/** What a CLI call loaded: files (ours and node_modules') and Node's built-in modules. */
function loadedBy(...args: string[]): { files: string[]; builtins: string[]; status: number | null } {
  const out = join(tempDir(), 'loaded.json');
  const r = spawnSync(process.execPath, ['-r', PROBE, CLI, ...args], { encoding: 'utf8', env: { ...process.env, DDMQ_LOADED_OUT: out } });
  return { ...JSON.parse(fs.readFileSync(out, 'utf8')), status: r.status };
}

describe('the bundled command line', () => {
  it("is package.json's bin, and the file the tests run", () => {
    const pkg = JSON.parse(fs.readFileSync(join(REPO, 'package.json'), 'utf8'));
    assert.equal(pkg.bin.ddmq, 'dist/cli/ddmq.cjs');
    assert.equal(CLI, join(REPO, pkg.bin.ddmq));
    assert.match(pkg.scripts.build, /scripts\/bundle-cli\.mjs/);
    assert.ok(fs.readFileSync(CLI, 'utf8').startsWith('#!/usr/bin/env node\n'));
  });

  it('is built from the sources as they are now (npm run build makes it anew)', () => {
    const record = join(REPO, 'dist', 'cli', 'ddmq.inputs.json');
    const { inputs } = JSON.parse(fs.readFileSync(record, 'utf8')) as { inputs: Record<string, string> };
    assert.ok(Object.keys(inputs).includes('src/cli/main.ts'));
    assert.deepEqual(staleInputs(record), [], 'changed since the bundle was built: run npm run build');
    assert.ok(!Object.keys(inputs).some((p) => p.includes('node_modules')), 'commander and yaml stay outside the bundle');
  });

  it('publish and consume load the bundle alone: no commander, yaml, crypto, child_process or perf_hooks', async () => {
    const root = join(tempDir(), 'root');
    (await Broker.open(root, { create: true })).close();
    for (const args of [['publish', root, 'q', 'hello', '-f'], ['consume', root, 'q']]) {
      const loaded = loadedBy(...args);
      assert.equal(loaded.status, 0, args[0]);
      assert.deepEqual(loaded.files, [CLI], args[0]);
      for (const unneeded of ['child_process', 'crypto', 'perf_hooks', 'readline']) {
        assert.ok(!loaded.builtins.includes(unneeded), `${args[0]} loads ${unneeded}`);
      }
    }
    // The probe sees them when they are loaded: commander for other commands, yaml to print YAML.
    assert.ok(loadedBy('view', root).files.some((f) => f.includes(join('node_modules', 'commander'))));
    assert.ok(loadedBy('publish', root, 'q', 'x', '--format', 'yaml').files.some((f) => f.includes(join('node_modules', 'yaml'))));
  });
});
