// Types of bench/farm.mjs, for test/scale.test.ts.
export interface FarmTarget {
  fs: string;
  a: string;
  b: string;
  truth: string;
}
export interface FarmRun {
  seconds: number;
  throughput: number;
  lost: number;
  claims: number;
  lostRatio: number;
  listings: number;
  acked: number;
  duplicates: number;
  missing: number;
  opsPerSecond?: number;
  /** With `keep`: the run's root through mount A and in the server's view. */
  root?: { a: string; truth: string };
}
export interface FarmRunOptions {
  consumers: number;
  mounts: ('A' | 'B')[];
  tasks: number;
  taskMs: number;
  live?: boolean;
  countOps?: boolean;
  acksDir?: string;
  tag: string;
  keep?: boolean;
}
export function resolveTarget(options: { rig?: string; root?: string }): FarmTarget;
export function runOnce(target: FarmTarget, top: string, options: FarmRunOptions): Promise<FarmRun>;
