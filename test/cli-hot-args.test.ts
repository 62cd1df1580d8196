/**
 * publish and consume lines are parsed without commander when they are plain
 * (src/cli/hot-args.ts). Whatever line that parser takes, it must give the very input
 * commander gives; every line it declines goes to commander, so it cannot differ there.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { consume } from '../src/cli/commands/consume.js';
import { publish } from '../src/cli/commands/publish.js';
import { parseHotArgs } from '../src/cli/hot-args.js';
import { main } from '../src/cli/program.js';
import type { CommandSpec, Input } from '../src/cli/spec.js';

const quiet = { out: () => {}, err: () => {} };

/** The input commander hands the command's run, or undefined if it ran nothing (an error, help). */
async function viaCommander(spec: CommandSpec, words: string[]): Promise<Input | undefined> {
  let seen: Input | undefined;
  const capture: CommandSpec = { ...spec, run: async (input) => ((seen = input), 0) };
  await main([spec.name, ...words], quiet, [capture]);
  return seen;
}

/** Every spelling of every option of the command, and words that look like values or not. */
function wordsOf(spec: CommandSpec): string[] {
  const flags = spec.options.flatMap((o) => [...o.flags.split(/[ ,]+/).filter((w) => w.startsWith('-')), ...(o.hiddenAlias ? [o.hiddenAlias] : [])]);
  return [...flags, 'r', 'q', 'hello', '', ' 7', '5', '-5', '0', '99999999999999999999', 'x', 'json', 'plain', 'yaml', '-', '--', '-h', '--help', '-fs', '-p5', '--priority=5', '--nope'];
}

/** Plain lines, each of which the hot parser must take. */
const SAMPLES: Record<string, string[][]> = {
  publish: [
    ['r', 'q', 'hello'],
    ['r', 'q', 'hello', '-f', '-p', '5', '--format', 'json', '-s', '-v', '-d', '-C'],
    ['-f', 'r', '--timeout', '30', 'q', '-t', '40', ''],
    ['r', 'q', 'm', '-r', '-l', '2', '--requeue-limit', '3', '--requeue_prio', '1', '--delay', '9', '--json-message', '--skip-cleaning'],
    ['r', 'q', '--file', 'f', '-p', ' 7', '--format', 'yaml'],
  ],
  consume: [
    ['r', 'q'],
    ['-f', 'r', 'q', '-n', '3', '-w', '0', '-t', '5', '--format', 'yaml', '--skip-cleaning', '-C', '-v', '-d'],
    ['r', '--timeout', '9', 'q', '--wait', '2', '--format', 'plain'],
  ],
};

for (const spec of [publish, consume]) {
  describe(`ddmq ${spec.name}: the hot parser and commander agree`, () => {
    it('on lines it takes, gives the same input; declines nothing commander would run differently', async () => {
      const samples = SAMPLES[spec.name]!;
      let taken = 0;
      for (const words of samples) {
        const hot = parseHotArgs(spec, words);
        if (hot === undefined) continue;
        taken++;
        assert.deepEqual(hot, await viaCommander(spec, words), words.join(' '));
      }
      assert.equal(taken, samples.length, 'the plain lines are all taken');
      await fc.assert(
        fc.asyncProperty(fc.array(fc.constantFrom(...wordsOf(spec)), { maxLength: 9 }), async (words) => {
          const hot = parseHotArgs(spec, words);
          if (hot !== undefined) assert.deepEqual(hot, await viaCommander(spec, words), words.join(' '));
        }),
        { numRuns: 400 },
      );
    });

    it('declines what commander reports with its own message', () => {
      for (const words of [['r'], ['r', 'q', 'm', 'extra'], ['r', 'q', '-p'], ['r', 'q', '-p', 'x'], ['r', 'q', '--format', 'xml'], ['r', 'q', '-h'], ['r', 'q', '--no-requeue'], ['r', 'q', '-fs'], ['r', 'q', '--', 'm']]) {
        if (spec === consume && words.includes('--no-requeue')) continue;
        assert.equal(parseHotArgs(spec, words), undefined, words.join(' '));
      }
    });
  });
}
