/** The completion script for one shell, from the command table. */
import type { CommandSpec } from '../spec.js';
import { bashCompletion } from './bash.js';
import { fishCompletion } from './fish.js';
import { completionModel } from './model.js';
import { zshCompletion } from './zsh.js';

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

export function completionScript(shell: Shell, commands: readonly CommandSpec[], version: string): string {
  const model = completionModel(commands);
  if (shell === 'bash') return bashCompletion(model, version);
  if (shell === 'zsh') return zshCompletion(model, version);
  return fishCompletion(model, version);
}
