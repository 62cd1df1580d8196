// Types of sim/simulate.mjs, for the tests.
export function loadProfiles(): Record<string, Record<string, unknown>>;
export function loadStrategy(name: string, sets?: string[]): Record<string, unknown>;
export function relError(pred: number, meas: number, floor?: number): number;
