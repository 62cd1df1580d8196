#!/usr/bin/env node
// The file-system operations ddmq makes per message and per idle second, against a floor
// written by hand with node:fs, counted with strace (see bench/fsops-lib.mjs for what is
// counted and what a metadata operation is).
//
//   npm run bench:fsops -- --root DIR            one folder
//   npm run bench:fsops -- --rig sshfs           mount A of a rig in DDMQ_NETFS (or /work/netfs.json)
//   npm run bench:fsops -- --all                 root disk, tmpfs, a journaled ext4 image, every rig
//   npm run bench:fsops -- --all --json          the same figures as JSON
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DATA, METADATA, PHASES, hasStrace, measure } from './fsops-lib.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const USAGE = `usage: npm run bench:fsops -- (--root DIR | --rig NAME | --all) [options]
  --root DIR     count on this folder (a fresh subfolder is made and removed)
  --rig NAME     count on mount A of this network file-system rig, from DDMQ_NETFS
                 (a JSON array of { name, a, b, truth }) or, without it, --netfs FILE
  --all          the root disk (/var/tmp), tmpfs (/dev/shm), a journaled ext4 loop image
                 (256 MB, made and removed; root only) and every rig
  --netfs FILE   the rigs when DDMQ_NETFS is not set [/work/netfs.json]
  --n N          messages per phase [200]
  --idle S       seconds an idle consumer is watched [20]
  --cli-n N      ddmq publish processes in the CLI row [20]
  --phases LIST  a comma-separated subset of: ${PHASES.map((p) => p.name).join(', ')}
  --fsync        open the broker with fsync (the floor then syncs the file and its folder)
  --json         print JSON instead of a Markdown table
  --out FILE     also write the JSON to FILE
Each phase runs in a child under strace -f -y; only calls on paths or descriptors under the
folder count. Metadata: open, the stat family, getdents64, rename, unlink, mkdir, rmdir, link,
utimes, chmod, truncate, xattrs; data calls (read, write, fsync, close) are counted apart.`;

function fail(text) {
  process.stderr.write(`bench:fsops: ${text}\n`);
  process.exit(2);
}

let opts;
try {
  ({ values: opts } = parseArgs({
    options: {
      root: { type: 'string' },
      rig: { type: 'string' },
      all: { type: 'boolean', default: false },
      netfs: { type: 'string', default: '/work/netfs.json' },
      n: { type: 'string', default: '200' },
      idle: { type: 'string', default: '20' },
      'cli-n': { type: 'string', default: '20' },
      phases: { type: 'string' },
      fsync: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }));
} catch (err) {
  fail(`${err.message}\n${USAGE}`);
}
if (opts.help) {
  console.log(USAGE);
  process.exit(0);
}
const positive = (name) => {
  const v = Number(opts[name]);
  if (!Number.isInteger(v) || v < 1) fail(`--${name} must be a whole number of at least 1, not "${opts[name]}"`);
  return v;
};
const n = positive('n');
const idleSeconds = positive('idle');
const cliN = positive('cli-n');
const phases = opts.phases ? opts.phases.split(',') : PHASES.map((p) => p.name);
for (const p of phases) if (!PHASES.some((q) => q.name === p)) fail(`--phases: unknown phase "${p}"; phases: ${PHASES.map((q) => q.name).join(', ')}`);
if ([opts.root !== undefined, opts.rig !== undefined, opts.all].filter(Boolean).length !== 1) fail(`give one of --root, --rig and --all\n${USAGE}`);
if (opts.out !== undefined) {
  // Found out now, not after minutes of counting.
  const folder = dirname(resolve(opts.out));
  if (!fs.statSync(folder, { throwIfNoEntry: false })?.isDirectory()) fail(`--out: ${opts.out}: its folder ${folder} is not there`);
  if (fs.statSync(opts.out, { throwIfNoEntry: false })?.isDirectory()) fail(`--out: ${opts.out} is a folder`);
}
if (!hasStrace()) fail('strace is not installed (Debian: apt-get install strace)');

function rigs() {
  let text = process.env.DDMQ_NETFS;
  let from = 'DDMQ_NETFS';
  if (!text) {
    if (!fs.existsSync(opts.netfs)) return [];
    text = fs.readFileSync(opts.netfs, 'utf8');
    from = opts.netfs;
  }
  try {
    const list = JSON.parse(text);
    if (!Array.isArray(list) || list.some((r) => typeof r?.name !== 'string' || typeof r?.a !== 'string')) throw new Error('not an array of { name, a, ... }');
    return list;
  } catch (err) {
    fail(`${from}: ${err.message}`);
  }
}

const rm = (dir) => fs.rmSync(dir, { recursive: true, force: true });
/** The file systems to count on: { name, label, root, down }. */
function targets() {
  if (opts.root !== undefined) {
    if (!fs.statSync(opts.root, { throwIfNoEntry: false })?.isDirectory()) fail(`--root: ${opts.root} is not a folder`);
    return [{ name: opts.root, label: opts.root, make: () => opts.root }];
  }
  const rigTarget = (r) => ({
    name: r.name,
    label: `${r.name} (mount A)`,
    make() {
      if (!fs.statSync(r.a, { throwIfNoEntry: false })?.isDirectory()) fail(`rig ${r.name}: mount A ${r.a} is not there`);
      return (this.root = fs.mkdtempSync(join(r.a, 'ddmq-fsops-')));
    },
    down() {
      rm(this.root);
    },
  });
  if (opts.rig !== undefined) {
    const r = rigs().find((x) => x.name === opts.rig);
    if (!r) fail(`--rig: no rig "${opts.rig}" in ${process.env.DDMQ_NETFS ? 'DDMQ_NETFS' : opts.netfs} (rigs: ${rigs().map((x) => x.name).join(', ') || 'none'})`);
    return [rigTarget(r)];
  }
  const list = [
    { name: 'disk', label: 'local disk (/var/tmp)', make() { return (this.root = fs.mkdtempSync('/var/tmp/ddmq-fsops-')); }, down() { rm(this.root); } },
    { name: 'tmpfs', label: 'tmpfs (/dev/shm)', make() { return (this.root = fs.mkdtempSync('/dev/shm/ddmq-fsops-')); }, down() { rm(this.root); } },
  ];
  if (process.getuid?.() === 0) {
    list.push({
      name: 'ext4',
      label: 'ext4 with journal (loop image)',
      make() {
        this.dir = fs.mkdtempSync('/tmp/ddmq-fsops-ext4-');
        const img = join(this.dir, 'image');
        this.mnt = join(this.dir, 'mnt');
        fs.mkdirSync(this.mnt);
        execFileSync('truncate', ['-s', '256M', img]);
        execFileSync('mkfs.ext4', ['-q', '-F', '-J', 'size=8', img]);
        execFileSync('mount', ['-o', 'loop', img, this.mnt]);
        return this.mnt;
      },
      down() {
        if (this.mnt) spawnSync('umount', [this.mnt]);
        if (this.dir) rm(this.dir);
      },
    });
  } else process.stderr.write('skipping ext4: making and mounting the image needs root\n');
  return [...list, ...rigs().map(rigTarget)];
}

const say = (text) => process.stderr.write(`${text}\n`);
const results = [];
const list = targets();
let current;
const cleanUp = () => current?.down?.();
process.on('SIGINT', () => {
  cleanUp();
  process.exit(130);
});
for (const target of list) {
  current = target;
  try {
    const root = target.make();
    say(`${target.label}: ${root}`);
    for (const phase of phases) {
      const r = await measure({ root, phase, n, idleSeconds, cliN, fsync: opts.fsync });
      say(`  ${phase}: ddmq ${r.ddmq.per.metadata.toFixed(2)}, floor ${r.floor.per.metadata.toFixed(2)} metadata calls a ${r.unit}`);
      results.push({ fs: target.name, label: target.label, ...r });
    }
  } finally {
    cleanUp();
    current = undefined;
  }
}

const commit = spawnSync('git', ['-C', HERE, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout?.trim() || null;
const meta = { date: new Date().toISOString(), commit, node: process.version, n, idleSeconds, cliN, fsync: opts.fsync };
const json = JSON.stringify({ ...meta, results }, null, 2);
if (opts.out) {
  try {
    fs.writeFileSync(opts.out, `${json}\n`);
  } catch (err) {
    process.stdout.write(`${json}\n`);
    fail(`--out: cannot write ${opts.out} (${err.code ?? err.message}); the JSON is on stdout above`);
  }
}
if (opts.json) {
  console.log(json);
} else {
  const f = (x) => (Math.round(x * 100) / 100).toString();
  const calls = (per) =>
    Object.entries(per.byCall)
      .filter(([, k]) => k >= 0.005)
      .sort((a, b) => b[1] - a[1])
      .map(([c, k]) => `${c} ${f(k)}`)
      .join(', ');
  const only = (per, keep) => ({ byCall: Object.fromEntries(Object.entries(per.byCall).filter(([c]) => keep(c))) });
  const meta_ = (per) => only(per, (c) => METADATA.has(c));
  const rest = (per) => [calls(only(per, (c) => DATA.has(c))) || '0', calls(only(per, (c) => !DATA.has(c) && !METADATA.has(c)))].filter(Boolean).join('; other: ');
    const setup = [`n=${n}`, phases.includes('publish-cli') && `${cliN} ddmq publish processes`, phases.some((p) => p.startsWith('idle')) && `idle ${idleSeconds} s`, opts.fsync && 'fsync'].filter(Boolean);
  console.log(`${meta.date.slice(0, 10)}, commit ${commit}, Node ${meta.node}; ${setup.join(', ')}\n`);
  console.log('| file system | phase | metadata calls: ddmq | floor | ddmq − floor | ddmq by call | floor by call | data calls: ddmq / floor |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of results) {
    const label = PHASES.find((p) => p.name === r.phase).label;
    console.log(`| ${r.label} | ${label}, a ${r.unit} | ${f(r.ddmq.per.metadata)} | ${f(r.floor.per.metadata)} | ${r.difference >= 0 ? '+' : ''}${f(r.difference)} | ${calls(meta_(r.ddmq.per))} | ${calls(meta_(r.floor.per))} | ${rest(r.ddmq.per)} / ${rest(r.floor.per)} |`);
  }
}
