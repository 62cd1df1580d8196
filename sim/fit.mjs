#!/usr/bin/env node
// The fit of sim/profiles.json's fitted figures to real runs:
//   node sim/fit.mjs FIXTURE.json [--rigs sshfs,glusterfs,moosefs]
// Fitted, as before: each rig's latencyScale (for the rigs of --rigs; default the three rigs,
// whose scale was fitted before; local disk's is not) and the machine's _machine.wakeUs and
// _machine.crowding. By turns (two rounds): each rig's scale from a grid, the machine's figures
// as they are; then the machine's figures from a grid, the scales as found. The score: the runs
// within 25% on every figure (ties: the smallest sum of absolute errors). Prints each step and
// the result. Nothing else in the profiles is fitted: latencies, CPU shares and staleness are
// measured.
import { readFileSync } from 'node:fs';
import { check, loadProfiles, loadStrategy } from './simulate.mjs';

const args = process.argv.slice(2);
const at = args.indexOf('--rigs');
const fitted = new Set((at >= 0 ? args.splice(at, 2)[1] ?? '' : 'sshfs,glusterfs,moosefs').split(','));
const file = args[0];
if (!file) {
  process.stderr.write('usage: node sim/fit.mjs FIXTURE.json [--rigs sshfs,glusterfs,moosefs] (as test/fixtures/sim-real-runs.json)\n');
  process.exit(2);
}
let data;
try {
  data = JSON.parse(readFileSync(file, 'utf8'));
} catch (err) {
  process.stderr.write(`fit: cannot read real runs ${file}: ${err.code ?? err.message}\n`);
  process.exit(2);
}
const runs = data.runs ?? data;
const profiles = loadProfiles();
const strategy = loadStrategy('main');
const rigs = [...new Set(runs.map((r) => r.fs))];
const WAKE = [0, 100, 200, 300, 400];
const CROWDING = [0, 0.25, 0.5, 1];
const SCALE = [0.6, 0.7, 0.8, 0.9, 1, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.8, 2];
const score = (rows) => ({ ok: rows.filter((r) => r.ok).length, err: rows.reduce((s, r) => s + Object.values(r.figures).reduce((a, f) => a + Math.abs(f.error), 0), 0) });
const better = (a, b) => b === null || a.ok > b.ok || (a.ok === b.ok && a.err < b.err);
const scales = Object.fromEntries(rigs.map((rig) => [rig, profiles[rig].latencyScale]));
let machine = { wakeUs: profiles._machine.wakeUs, crowding: profiles._machine.crowding };
const withScales = () => Object.fromEntries(Object.entries(profiles).map(([k, v]) => [k, k in scales ? { ...v, latencyScale: scales[k] } : v]));
const total = () => score(check(runs, withScales(), strategy, { sharedCores: 2, ...machine }));
for (let round = 1; round <= 2; round++) {
  for (const rig of rigs) {
    if (!fitted.has(rig)) continue;
    const mine = runs.filter((r) => r.fs === rig);
    let pick = null;
    for (const latencyScale of SCALE) {
      const p = { ...profiles, [rig]: { ...profiles[rig], latencyScale } };
      const s = { ...score(check(mine, p, strategy, { sharedCores: 2, ...machine })), latencyScale };
      if (better(s, pick)) pick = s;
    }
    scales[rig] = pick.latencyScale;
  }
  let pick = null;
  const p = withScales();
  for (const wakeUs of WAKE) {
    for (const crowding of CROWDING) {
      const s = { ...score(check(runs, p, strategy, { sharedCores: 2, wakeUs, crowding })), wakeUs, crowding };
      if (better(s, pick)) pick = s;
    }
  }
  machine = { wakeUs: pick.wakeUs, crowding: pick.crowding };
  const s = total();
  process.stdout.write(`round ${round}: latencyScale ${JSON.stringify(scales)}, wakeUs ${machine.wakeUs}, crowding ${machine.crowding}: ${s.ok} of ${runs.length} within 25% (sum of errors ${s.err.toFixed(2)})\n`);
}
process.stdout.write(`${JSON.stringify({ latencyScale: scales, ...machine })}\n`);
