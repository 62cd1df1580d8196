// A markdown table of simulation results: node sim/table.mjs FILE.json... (npm run simulate -- ... --json)
import { readFileSync } from 'node:fs';

const files = process.argv.slice(2);
const usage = 'usage: node sim/table.mjs FILE.json... (output of npm run simulate -- ... --json)\n';
if (files.includes('-h') || files.includes('--help')) {
  process.stdout.write(usage);
  process.exit(0);
}
if (files.length === 0) {
  process.stderr.write(usage);
  process.exit(2);
}
const duration = (sec) => (sec < 120 ? `${+sec.toPrecision(3)} s` : sec < 7200 ? `${+(sec / 60).toPrecision(3)} min` : `${+(sec / 3600).toPrecision(3)} h`);
const n = (x) => (x >= 100 ? Math.round(x).toLocaleString('en-US') : String(+x.toPrecision(3)));
const fail = (message) => {
  process.stderr.write(`table: ${message}\n`);
  process.exit(2);
};
const tables = files.map((file) => {
  let data;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    fail(`${file}: ${err.code ?? err.message} (give the output of npm run simulate -- ... --json)`);
  }
  const rows = Array.isArray(data) ? data : [data];
  for (const r of rows) {
    const s = r?.steady ?? r;
    if (typeof r?.fs !== 'string' || !(r.consumers > 0) || !(s?.throughput > 0) || typeof s.lostRatio !== 'number' || typeof s.opsPerSecond !== 'number') {
      fail(`${file}: not npm run simulate -- ... --json output (a result lacks fs, consumers, throughput, lostRatio or opsPerSecond)`);
    }
  }
  return rows;
});
process.stdout.write('| file system | workers (hosts × per host) | task | server ops/s | lost claims | tasks/s | workers busy | server busy | tasks done | after |\n');
process.stdout.write('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n');
for (const rows of tables) {
  for (const r of rows) {
    const s = r.steady ?? r;
    process.stdout.write(
      // The steady figures (10% to 50% done), then how far the run went and when it got there
      // (the start included: every worker's first listing of the whole queue).
      `| ${r.fs} | ${r.consumers.toLocaleString('en-US')} (${r.hosts} × ${r.workers}) | ${r.taskSeconds} s | ${n(s.opsPerSecond)} | ${Math.round(100 * s.lostRatio)}% | ${n(s.throughput)} | ${Math.round(100 * (r.efficiency ?? 0))}% | ${Math.round(100 * r.serverUtilisation)}% | ${Math.round((100 * r.throughput * r.seconds) / r.depth)}% | ${duration(r.seconds)} |\n`,
    );
  }
}
