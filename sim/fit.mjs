#!/usr/bin/env node
// The fit of sim/profiles.json's fitted figures to real runs:
//   node sim/fit.mjs FIXTURE.json [--rigs sshfs,glusterfs,moosefs]
// For each machine setting (_machine.wakeUs × _machine.crowding, a grid) and each rig of
// --rigs (default: the three rigs, whose latencyScale was fitted before; local disk's is
// not), the rig's latencyScale (a grid) with the most of its runs within 25% on every figure
// (ties: the smallest sum of absolute errors); the other rigs keep theirs. Prints the best
// setting overall and each rig's scale. Nothing else in the profiles is fitted: latencies,
// CPU shares and staleness are measured.
import { readFileSync } from 'node:fs';
import { check, loadProfiles, loadStrategy } from './simulate.mjs';

const args = process.argv.slice(2);
const at = args.indexOf('--rigs');
const fitted = new Set((at >= 0 ? args.splice(at, 2)[1] ?? '' : 'sshfs,glusterfs,moosefs').split(','));
const file = args[0];
if (!file) {
  process.stderr.write('usage: node sim/fit.mjs FIXTURE.json (as test/fixtures/sim-real-runs.json)\n');
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
let best = null;
for (const wakeUs of WAKE) {
  for (const crowding of CROWDING) {
    const total = { ok: 0, err: 0, scales: {}, wakeUs, crowding };
    for (const rig of rigs) {
      const mine = runs.filter((r) => r.fs === rig);
      let pick = null;
      for (const latencyScale of fitted.has(rig) ? SCALE : [profiles[rig].latencyScale]) {
        const p = { ...profiles, [rig]: { ...profiles[rig], latencyScale } };
        const s = { ...score(check(mine, p, strategy, { sharedCores: 2, wakeUs, crowding })), latencyScale };
        if (better(s, pick)) pick = s;
      }
      total.ok += pick.ok;
      total.err += pick.err;
      total.scales[rig] = pick.latencyScale;
    }
    process.stdout.write(`wakeUs ${wakeUs} crowding ${crowding}: ${total.ok} of ${runs.length} within 25% (sum of errors ${total.err.toFixed(2)}), latencyScale ${JSON.stringify(total.scales)}\n`);
    if (better(total, best)) best = total;
  }
}
process.stdout.write(`best: ${JSON.stringify(best)}\n`);
