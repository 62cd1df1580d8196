/**
 * The package as users get it: `npm pack`, installed from the tarball alone (no registry,
 * an empty npm cache, as on a cluster without internet), then used from an ES module,
 * from CommonJS, from TypeScript (.mts and .cts, module nodenext) and through its bin.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { REPO, tempDir } from './helpers.js';
import { VERSION } from '../src/index.js';

function run(cmd: string, args: string[], cwd: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, npm_config_update_notifier: 'false' } });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} (in ${cwd}) failed: ${r.error?.message ?? ''}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** Whether src/ has this module (path without extension, below src/). */
const isSource = (module: string) => fs.existsSync(join(REPO, 'src', `${module}.ts`));

// Made here, not in before(): a tempDir made in a hook is removed when the hook ends.
const out = tempDir('ddmq-pack-');
const project = join(out, 'project');
let tarball = '';
let packed: string[] = [];

before(() => {
  // --ignore-scripts: pack what the build made (helpers.ts refused a stale one), not rebuild
  // dist/ under the feet of the other test files running meanwhile.
  const [info] = JSON.parse(run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', out], REPO)) as { filename: string; files: { path: string }[] }[];
  tarball = join(out, info!.filename);
  packed = info!.files.map((f) => f.path).sort();

  fs.mkdirSync(project);
  fs.writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'scratch', version: '0.0.0', private: true }));
  run('npm', ['install', '--offline', '--cache', join(out, 'empty-cache'), '--no-audit', '--no-fund', tarball], project);
});

describe('the packed package', () => {
  it('holds exactly the build, the man page, its bundled dependencies, the README, LICENSE and CHANGELOG', () => {
    assert.equal(tarball.endsWith(`ddmq-${VERSION}.tgz`), true, tarball);
    // The library's modules are what tsc wrote from the two entries: each once as an ES
    // module and once as CommonJS, each with its declarations, each from a current source.
    const modules = packed.flatMap((p) => /^dist\/(?!cjs\/|cli\/)(.+)\.js$/.exec(p)?.[1] ?? []);
    assert.ok(['index', 'internals', 'store/broker', 'worker/work'].every((m) => modules.includes(m)), modules.join(' '));
    assert.deepEqual(modules.filter((m) => !isSource(m) || m.startsWith('cli/')), []);
    const expected = new Set([
      'package.json',
      'README.md',
      'LICENSE',
      'CHANGELOG.md',
      'internals/package.json',
      'dist/cli/ddmq.cjs',
      'dist/ddmq.1',
      'dist/cjs/package.json',
      ...modules.flatMap((m) => [`dist/${m}.js`, `dist/${m}.d.ts`, `dist/cjs/${m}.js`, `dist/cjs/${m}.d.ts`]),
    ]);
    const bundled = (p: string) => /^node_modules\/(commander|yaml)\//.test(p);
    assert.deepEqual(packed.filter((p) => !bundled(p)), [...expected].sort());
    // The runtime dependencies travel inside, whole, so that the tarball alone installs.
    for (const dep of ['commander', 'yaml']) assert.ok(packed.includes(`node_modules/${dep}/package.json`), dep);
    assert.deepEqual(packed.filter((p) => /\.(map|tsbuildinfo)$|inputs\.json$|^(src|test|bench|scripts)\//.test(p) && !bundled(p)), []);
  });

  it('works from an ES module: publish, consume, ack', () => {
    const root = join(project, 'root-esm');
    fs.writeFileSync(
      join(project, 'esm.mjs'),
      `import { Broker, VERSION } from 'ddmq';
       import { Queue } from 'ddmq/internals';
       const broker = await Broker.open(${JSON.stringify(root)}, { create: true });
       await broker.publish('jobs', { n: 1 });
       const [m] = await broker.consume('jobs');
       await broker.ack(m);
       const [counts] = await broker.counts('jobs');
       broker.close();
       console.log(JSON.stringify({ body: m.message, counts, version: VERSION, queue: typeof Queue }));`,
    );
    const out = JSON.parse(run(process.execPath, ['esm.mjs'], project));
    assert.deepEqual(out.body, { n: 1 });
    assert.deepEqual([out.counts.ready, out.counts.inFlight], [0, 0], 'acked: gone');
    assert.equal(out.version, VERSION);
    assert.equal(out.queue, 'function');
  });

  it('works from CommonJS, and its errors are DdmqErrors to the ES module copy and back', () => {
    const root = join(project, 'root-cjs');
    fs.writeFileSync(
      join(project, 'cjs.cjs'),
      `const { Broker, work, isDdmqError, DdmqError } = require('ddmq');
       const { parseReadyName } = require('ddmq/internals');
       (async () => {
         const esm = await import('ddmq');
         const broker = await Broker.open(${JSON.stringify(root)}, { create: true });
         await broker.publish('jobs', 'hello');
         const seen = [];
         const stats = await work(broker, 'jobs', (m) => { seen.push(m.message); }, { maxMessages: 1 }).done;
         broker.close();
         const missing = async (B) => B.open(${JSON.stringify(join(root, 'nowhere'))}).then(() => null, (e) => e);
         const fromEsm = await missing(esm.Broker);
         const fromCjs = await missing(Broker);
         console.log(JSON.stringify({
           seen, done: stats.done, readyName: typeof parseReadyName,
           twoCopies: esm.DdmqError !== DdmqError,
           esmErrorInCjs: isDdmqError(fromEsm, 'ROOT_MISSING') && fromEsm instanceof DdmqError,
           cjsErrorInEsm: esm.isDdmqError(fromCjs, 'ROOT_MISSING') && fromCjs instanceof esm.DdmqError,
           plainError: isDdmqError(new Error('x')) || new Error('x') instanceof esm.DdmqError,
           interrupted: new esm.TaskInterrupted('x') instanceof require('ddmq').TaskInterrupted,
         }));
       })().catch((e) => { console.error(e); process.exit(1); });`,
    );
    const out = JSON.parse(run(process.execPath, ['cjs.cjs'], project));
    assert.deepEqual(out.seen, ['hello']);
    assert.equal(out.done, 1);
    assert.equal(out.readyName, 'function');
    assert.equal(out.twoCopies, true, 'require and import load separate copies, the case the brand is for');
    assert.equal(out.esmErrorInCjs, true);
    assert.equal(out.cjsErrorInEsm, true);
    assert.equal(out.plainError, false);
    assert.equal(out.interrupted, true);
  });

  it('type-checks from TypeScript (.mts and .cts, module nodenext) and the output runs', () => {
    const ts = join(project, 'ts');
    fs.mkdirSync(ts);
    fs.writeFileSync(
      join(ts, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2022',
          strict: true,
          // As most projects have it; checking every declaration (@types/node's too) would
          // triple the time, and attw (npm run check:package) checks ours.
          skipLibCheck: true,
          typeRoots: [join(REPO, 'node_modules', '@types')],
          types: ['node'],
          outDir: 'out',
        },
        files: ['esm.mts', 'cjs.cts'],
      }),
    );
    // The @ts-expect-error lines fail the check if the types were not found (all `any`).
    const body = (root: string) => `
      const options: BrokerOptions = { create: true };
      async function main(): Promise<string> {
        const broker = await Broker.open(${JSON.stringify(root)}, options);
        // @ts-expect-error a queue name is a string
        void (() => broker.publish(1, 'x'));
        const published: Message = await broker.publish('q', { ok: true });
        const [m] = await broker.consume('q');
        if (!m) throw new Error('nothing consumed');
        await broker.ack(m);
        broker.close();
        const err: unknown = await Broker.open(${JSON.stringify(join(root, 'missing'))}).catch((e: unknown) => e);
        const code: ErrorCode | undefined = isDdmqError(err) ? err.code : undefined;
        return JSON.stringify({ same: published.id === m.id, code, ready: typeof parseReadyName });
      }
      main().then((s) => console.log(s), (e) => { console.error(e); process.exit(1); });`;
    fs.writeFileSync(
      join(ts, 'esm.mts'),
      `import { Broker, isDdmqError, type BrokerOptions, type ErrorCode, type Message } from 'ddmq';
       import { parseReadyName } from 'ddmq/internals';
       // @ts-expect-error Queue is not in the main entry
       export type NotThere = import('ddmq').Queue;
       ${body(join(project, 'root-mts'))}`,
    );
    fs.writeFileSync(
      join(ts, 'cjs.cts'),
      `import { Broker, isDdmqError, type BrokerOptions, type ErrorCode, type Message } from 'ddmq';
       import { parseReadyName } from 'ddmq/internals';
       ${body(join(project, 'root-cts'))}`,
    );
    run(process.execPath, [join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', ts], ts);
    assert.match(fs.readFileSync(join(ts, 'out', 'cjs.cjs'), 'utf8'), /require\("ddmq"\)/);
    for (const file of ['esm.mjs', 'cjs.cjs']) {
      assert.deepEqual(JSON.parse(run(process.execPath, [join(ts, 'out', file)], ts)), { same: true, code: 'ROOT_MISSING', ready: 'function' }, file);
    }
  });

  it('installs its bin: --version, publish and consume', () => {
    const bin = join(project, 'node_modules', '.bin', 'ddmq');
    assert.equal(run(bin, ['--version'], project).trim(), `ddmq version ${VERSION}`);
    const root = join(project, 'root-bin');
    run(bin, ['publish', root, 'q', 'from the bin', '-f'], project);
    assert.match(run(bin, ['consume', root, 'q'], project), /from the bin/);
  });
});
