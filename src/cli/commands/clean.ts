import { DdmqError } from '../../format/errors.js';
import type { CleanResult } from '../../store/queue.js';
import { openBroker } from '../open.js';
import { emit } from '../output.js';
import { type CommandSpec, CREATE, exitCodeOver, REPORT_OPTIONS, ROOT_ARG } from '../spec.js';
import { optionalQueues, reportFailure } from './each-queue.js';

export const clean: CommandSpec = {
  name: 'clean',
  summary: 'Requeue (or drop, at their limit) in-flight messages whose lease ran out',
  help:
    'Without QUEUE, every queue of the root is cleaned, and the task records of deleted queues are pruned\n' +
    '(by the root\'s history_max_age and history_max_bytes). A queue that cannot be cleaned (a bad ddmq.yaml, a\n' +
    'link in its place) is reported on stderr and the others are cleaned; exit code 7 if some failed.',
  args: [ROOT_ARG, { key: 'queue', description: 'comma-separated names of the queues to clean (default: all)', required: false, list: true }],
  options: [CREATE, ...REPORT_OPTIONS],
  async run(input, ctx) {
    const names = optionalQueues(input);
    const broker = await openBroker(input, ctx);
    const results: CleanResult[] = [];
    const failures: DdmqError[] = [];
    const fail = (err: DdmqError) => {
      reportFailure(ctx, err);
      failures.push(err);
    };
    for (const r of await broker.clean(names.length === 0 ? undefined : names)) (r.error ? fail(r.error) : results.push(r));
    const rows = results.map((r) => ({ queue: r.queue, requeued: r.requeued, dropped: r.dropped, dead_lettered: r.deadLettered, corrupt: r.corrupt, temps_removed: r.tempsRemoved }));
    if (!input.s) {
      await emit(ctx, String(input.format), rows, (r) => `cleaned ${r.queue} (${r.requeued} requeued, ${r.dropped} dropped, ${r.dead_lettered} dead-lettered, ${r.corrupt} corrupt)`);
    }
    return exitCodeOver(failures, results.length + failures.length);
  },
};
