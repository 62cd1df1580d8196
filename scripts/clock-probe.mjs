#!/usr/bin/env node
// What the file server's clock looks like from this host, through each folder given
// (README: "Clocks"): opens a broker on a fresh root in a subfolder of each, measures,
// prints one JSON line per folder, and removes the subfolder. Run it under faketime to see
// a skewed host measured right: faketime -f '+120s' node scripts/clock-probe.mjs /mnt/a
// (after npm run build).
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';

const { Broker } = await import(new URL('../dist/index.js', import.meta.url).href);
const folders = process.argv.slice(2);
if (folders.length === 0 || folders.includes('--help')) {
  console.log('usage: node scripts/clock-probe.mjs FOLDER...   (each folder: where a test root may be made and removed)');
  process.exit(folders.length === 0 ? 2 : 0);
}
for (const folder of folders) {
  const top = join(folder, `ddmq-clock-probe-${randomUUID().slice(0, 8)}`);
  try {
    const warnings = [];
    const broker = await Broker.open(top, { create: true, onWarning: (w) => warnings.push(w.message) });
    await broker.createQueue('q');
    const state = broker.clock('q');
    const grace = (await broker.settings('q')).expiry_grace;
    console.log(JSON.stringify({ folder, ...state, expiry_grace: grace, warnings }));
  } catch (err) {
    console.log(JSON.stringify({ folder, error: err instanceof Error ? err.message : String(err) }));
  } finally {
    fs.rmSync(top, { recursive: true, force: true });
  }
}
