/**
 * examples/: the job scripts parse and, run as plain bash with the scheduler's array
 * variables set, do every task once; the TypeScript worker type-checks (strict) and,
 * with the Python producer, carries tasks and results both ways. Each imports 'ddmq'
 * as a user's program would (the package resolves its own name through "exports").
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Broker } from '../src/index.js';
import { type ChildResult, CLI, REPO, runChild, tempDir } from './helpers.js';

const EXAMPLES = join(REPO, 'examples');
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

/** A PATH whose `ddmq` is this package's command, as `npm install -g` would give. */
function pathWithDdmq(): string {
  const bin = join(tempDir(), 'bin');
  fs.mkdirSync(bin);
  fs.symlinkSync(CLI, join(bin, 'ddmq'));
  return `${bin}:${process.env.PATH}`;
}

function run(cmd: string, args: string[], env: Record<string, string>, cwd?: string): Promise<ChildResult> {
  return runChild(cmd, args, { env, cwd });
}

/** Inputs f1.txt ... fN.txt, fK holding K lines. */
function inputs(n: number): string {
  const dir = join(tempDir(), 'inputs');
  fs.mkdirSync(dir);
  for (let k = 1; k <= n; k++) fs.writeFileSync(join(dir, `f${k}.txt`), Array.from({ length: k }, (_, i) => `line ${i}\n`).join(''));
  return dir;
}

/** The joblog lines of every array task, as objects keyed by the header. */
function joblogRows(dir: string): Record<string, string>[] {
  return fs.readdirSync(dir).flatMap((name) => {
    const [header, ...lines] = fs.readFileSync(join(dir, name), 'utf8').trimEnd().split('\n');
    const keys = header!.split('\t');
    return lines.map((l) => Object.fromEntries(l.split('\t').map((v, i) => [keys[i]!, v])));
  });
}

/**
 * Publishes N tasks with publish.sh, runs `script` as 3 array tasks at once, and checks
 * every task was done once. As a scheduler does, each runs a copy of the script kept
 * elsewhere, submitted from the clone (`sbatch examples/slurm-array.sh`).
 */
async function farm(script: string, arrayEnv: (index: number) => Record<string, string>) {
  const n = 12;
  const input = inputs(n);
  const root = join(tempDir(), 'farm');
  const PATH = pathWithDdmq();
  const published = await run('bash', [join(EXAMPLES, 'publish.sh'), input], { PATH, DDMQ_ROOT: root });
  assert.equal(published.code, 0, published.err);
  const spool = tempDir();
  fs.copyFileSync(join(EXAMPLES, script), join(spool, 'job_script'));
  const tasks = await Promise.all(
    [1, 2, 3].map((i) => run('bash', [join(spool, 'job_script')], { PATH, DDMQ_ROOT: root, IDLE_EXIT: '1', ...arrayEnv(i) }, spool)),
  );
  for (const t of tasks) assert.equal(t.code, 0, t.err);
  for (let k = 1; k <= n; k++) assert.equal(fs.readFileSync(join(input, `f${k}.txt.lines`), 'utf8').trim(), String(k));
  const joblogs = join(root, '..', 'joblog');
  assert.equal(fs.readdirSync(joblogs).length, 3, 'a joblog per array task');
  const rows = joblogRows(joblogs);
  assert.equal(rows.length, n, 'one joblog line per task');
  assert.equal(new Set(rows.map((r) => r.MessageId)).size, n, 'each task once');
  assert.ok(rows.every((r) => r.Outcome === 'done' && r.Attempt === '1'));
  const broker = await Broker.open(root);
  const [counts] = await broker.counts('tasks');
  assert.equal(counts!.ready + counts!.inFlight + counts!.delayed, 0);
}

describe('examples', () => {
  it('the shell scripts parse (bash -n)', () => {
    for (const name of fs.readdirSync(EXAMPLES).filter((f) => f.endsWith('.sh'))) {
      const r = spawnSync('bash', ['-n', join(EXAMPLES, name)], { encoding: 'utf8' });
      assert.equal(r.status, 0, `${name}: ${r.stderr}`);
    }
  });

  it('slurm-array.sh, as 3 array tasks, does every published task once, one joblog per array task', async () => {
    await farm('slurm-array.sh', (i) => ({ SLURM_ARRAY_JOB_ID: '77', SLURM_ARRAY_TASK_ID: String(i), SLURM_JOB_ID: `${77 + i}`, SLURM_CPUS_PER_TASK: '2', SLURM_SUBMIT_DIR: REPO }));
  });

  it('pbs-torque.sh, as 3 array tasks ($PBS_ARRAYID), does every published task once', async () => {
    await farm('pbs-torque.sh', (i) => ({ PBS_ARRAYID: String(i), PBS_JOBID: '55[].server', PBS_NUM_PPN: '2', PBS_O_WORKDIR: REPO }));
  });

  it('worker.ts type-checks under strict TypeScript, importing ddmq by its name', () => {
    const tsc = join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
    const args = ['--noEmit', '--strict', '--noUncheckedIndexedAccess', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--types', 'node'];
    const r = spawnSync(process.execPath, [tsc, ...args, join(EXAMPLES, 'worker.ts')], { encoding: 'utf8', cwd: REPO });
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });

  it('producer.py publishes tasks, worker.ts does them and publishes results, producer.py collects them', { skip: has('python3') || process.env.CI ? false : 'python3 is not installed' }, async () => {
    const input = inputs(5);
    const root = join(tempDir(), 'root');
    const PATH = pathWithDdmq();
    const files = fs.readdirSync(input).filter((f) => f.endsWith('.txt')).map((f) => join(input, f));
    const pub = await run('python3', [join(EXAMPLES, 'producer.py'), 'publish', root, ...files], { PATH });
    assert.equal(pub.code, 0, pub.err);
    assert.equal(pub.out.match(/^published [0-9a-f]{32}: /gm)?.length, 5);
    const worker = await run(process.execPath, ['--import', 'tsx', join(EXAMPLES, 'worker.ts'), root], { IDLE_EXIT: '1' });
    assert.equal(worker.code, 0, worker.err);
    assert.deepEqual(JSON.parse(worker.out.trim()), { done: 5, failed: 0, released: 0, leaseLost: 0, running: 0 });
    const collected = await run('python3', [join(EXAMPLES, 'producer.py'), 'collect', root], { PATH });
    assert.equal(collected.code, 0, collected.err);
    // fK.txt holds K lines of 2 words.
    const results = collected.out.trim().split('\n').map((l) => l.split('\t')).sort();
    assert.deepEqual(results, files.sort().map((f) => [f, String(2 * Number(/f(\d+)\.txt$/.exec(f)![1]))]));
    const broker = await Broker.open(root);
    assert.deepEqual((await broker.counts()).map((c) => [c.queue, c.ready + c.inFlight]).sort(), [['results', 0], ['tasks', 0]]);
  });
});
