import type { CommandSpec } from '../spec.js';

/**
 * `ddmq man`: prints the manual page (roff) made from the command table. The build
 * writes the same text to dist/ddmq.1, which npm installs as the package's man page.
 */
export function manCommand(commands: () => readonly CommandSpec[]): CommandSpec {
  return {
    name: 'man',
    summary: 'Print the manual page (roff; read it with: ddmq man | man -l -)',
    args: [],
    options: [],
    async run(_input, ctx) {
      const { manPage } = await import('../man-page.js');
      ctx.out(manPage(commands()).trimEnd());
      return 0;
    },
  };
}
