// Types of bench/farm.mjs, for test/scale.test.ts and test/simulate.test.ts.
export interface FarmTarget {
  fs: string;
  a: string;
  b: string;
  truth: string;
}
/** The figures of one run, and of a sweep's medians. */
export interface FarmFigures {
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
  /** The share of the machine's CPU other programs took during the run (0..1). */
  otherLoad: number;
  consumerCpuMsPerTask: number;
  daemonCpuMsPerTask: Record<string, number>;
}
export interface FarmRun extends FarmFigures {
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
/** One consumer count of a sweep: the medians of its runs (bench/farm.mjs --help). */
export interface FarmResult extends FarmFigures {
  fs: string;
  consumers: number;
  mounts: string;
  tasks: number;
  taskMs: number;
  runs: number;
  throughputs: number[];
  otherLoads: number[];
}
export interface FarmOptions {
  rig?: string;
  root?: string;
  mounts: ('A' | 'B')[];
  consumers: number[];
  tasks: number;
  taskMs: number;
  repeat: number;
  live?: boolean;
  countOps?: boolean;
  acksDir?: string;
  onResult?: (result: FarmResult) => void;
}
export function runFarm(options: FarmOptions): Promise<FarmResult[]>;
export function resolveTarget(options: { rig?: string; root?: string }): FarmTarget;
export function runOnce(target: FarmTarget, top: string, options: FarmRunOptions): Promise<FarmRun>;
