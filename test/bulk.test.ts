/** Bulk publishing: the library's publishMany and `ddmq publish --file`. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Broker } from '../src/index.js';
import { CLI, patchFs, tempDir } from './helpers.js';

async function setup() {
  const dir = tempDir();
  const root = join(dir, 'root');
  const broker = await Broker.open(root, { create: true });
  await broker.createQueue('q');
  return { dir, root, broker };
}

describe('bulk publishing', () => {
  it('publishMany writes every message in order, with the options', async () => {
    const { broker } = await setup();
    const n = await broker.publishMany('q', Array.from({ length: 500 }, (_, i) => ({ i })), { priority: 3, requeueLimit: 2 });
    assert.equal(n, 500);
    const got = await broker.consume('q', { n: 1000 });
    assert.deepEqual(got.map((m) => (m.message as { i: number }).i), Array.from({ length: 500 }, (_, i) => i));
    assert.ok(got.every((m) => m.priority === 3 && m.requeueLimit === 2));
  });

  it('ddmq publish --file: one message per line in order, stdin with -, JSON lines; errors name the line', async () => {
    const { dir, root, broker } = await setup();
    const file = join(dir, 'tasks.txt');
    fs.writeFileSync(file, 'first line\nsecond\n\nthird, with spaces\n');
    let r = spawnSync(process.execPath, [CLI, 'publish', root, 'q', '--file', file], { encoding: 'utf8' });
    assert.deepEqual([r.status, r.stdout], [0, 'published 3 messages to q\n']);
    assert.deepEqual((await broker.consume('q', { n: 10 })).map((m) => m.text), ['first line', 'second', 'third, with spaces']);
    r = spawnSync(process.execPath, [CLI, 'publish', root, 'q', '--file', '-', '--json-message', '--format', 'json'], { input: '{"a":1}\n[2]\nnot json\n"never"\n', encoding: 'utf8' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /line 3: not valid JSON.*2 lines before it were published/);
    assert.deepEqual((await broker.consume('q', { n: 10 })).map((m) => m.message), [{ a: 1 }, [2]]);
    for (const args of [['publish', root, 'q', 'x', '--file', file], ['publish', root, 'q'], ['publish', root, 'q', '--file', join(dir, 'missing')]]) {
      r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
      assert.equal(r.status, 2, args.join(' '));
    }
  });

  it('shows its progress on a terminal', async () => {
    const { dir, root } = await setup();
    const file = join(dir, 'many.txt');
    fs.writeFileSync(file, Array.from({ length: 3000 }, (_, i) => `task ${i}`).join('\n'));
    // script(1) gives the command a terminal; what it wrote is in the typescript file.
    const typescript = join(dir, 'typescript');
    const r = spawnSync('script', ['-q', '-e', '-c', `"${process.execPath}" "${CLI}" publish "${root}" q --file "${file}"`, typescript], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const screen = fs.readFileSync(typescript, 'utf8');
    assert.match(screen, /published 1000 \(\d+%\)/);
    assert.match(screen, /published 3000 messages to q/);
  });
});
