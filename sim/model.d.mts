// Types of sim/model.mjs, for the tests.
export interface SimResult {
  fs: string;
  hosts: number;
  workers: number;
  consumers: number;
  depth: number;
  taskSeconds: number;
  drained: boolean;
  efficiency: number | null;
  seconds: number;
  throughput: number;
  claims: number;
  lost: number;
  lostRatio: number;
  listings: number;
  cachedListings: number;
  serverOps: number;
  opsPerSecond: number;
  syscallsPerSecond: number;
  opsPerTask: number;
  byKind: Record<'stat' | 'read' | 'rename' | 'unlink' | 'readdir' | 'scan', number>;
  serverUtilisation: number;
  machineUtilisation: number | null;
  steady: { throughput: number; opsPerSecond: number; lostRatio: number } | null;
  acked: number;
  ackedTwice: number;
  neverAcked: number;
}
export interface SimConfig {
  hosts?: number;
  workers?: number;
  layout?: number[];
  depth: number;
  taskSeconds: number;
  profile: Record<string, unknown>;
  strategy: Record<string, unknown>;
  seed?: number;
  sharedCores?: number | null;
  otherLoad?: number;
  wakeUs?: number;
  crowding?: number;
  hostCores?: number;
  serverSpeed?: number;
  maxSeconds?: number;
  startSpreadSeconds?: number;
  taskJitter?: number;
  until?: number;
}
export function simulate(cfg: SimConfig): SimResult;
export function rng(seed: number): () => number;
