import type { CommandSpec } from '../spec.js';

/** Kept here, not imported from ../completion/, so that the table does not load the generators. */
const SHELLS = ['bash', 'zsh', 'fish'] as const;

/**
 * `ddmq completion bash|zsh|fish`: prints a completion script made from the command
 * table (`commands`, as `json` gets it), so that it completes every command and option.
 */
export function completionCommand(commands: () => readonly CommandSpec[]): CommandSpec {
  return {
    name: 'completion',
    summary: 'Print a shell completion script (bash, zsh or fish)',
    help:
      'Completes commands, options, --format values, the root (a folder) and the queues in it.\n' +
      'bash: source <(ddmq completion bash), or save it as ~/.local/share/bash-completion/completions/ddmq\n' +
      'zsh:  source <(ddmq completion zsh) after compinit, or save it as _ddmq in a folder of $fpath\n' +
      'fish: ddmq completion fish | source, or save it as ~/.config/fish/completions/ddmq.fish',
    args: [{ key: 'shell', description: 'the shell: bash, zsh or fish', required: true, choices: SHELLS }],
    options: [],
    async run(input, ctx) {
      const [{ completionScript }, { VERSION }] = await Promise.all([import('../completion/index.js'), import('../../version.js')]);
      ctx.out(completionScript(input.shell as (typeof SHELLS)[number], commands(), VERSION).trimEnd());
      return 0;
    },
  };
}
