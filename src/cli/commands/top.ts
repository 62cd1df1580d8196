import { DdmqError } from '../../format/errors.js';
import { type CommandSpec, DEBUG, FORMAT, ROOT_ARG, VERBOSE } from '../spec.js';
import { optionalQueues } from './each-queue.js';

export const topCommand: CommandSpec = {
  name: 'top',
  summary: 'Watch a farm live: queue counts, done and failed rates with a chart, ETA, workers by host, latest failures',
  help:
    'Redrawn every --interval seconds (default 1) by reading the tree, the task records and the workers\'\n' +
    'presence files (ROOT/.ddmq): no notification is needed, so it works over NFS and sshfs alike.\n' +
    'Per queue: ready, delayed, in flight, dead (dead-lettered or dropped, over the kept records), the done and\n' +
    'failed rates over the last 10 minutes, the ETA of what is left at the done rate, and a chart of done and\n' +
    'failed per minute over the last --minutes (default 30). Workers at work by host (heard from in the last\n' +
    'minute; their tasks running and their slots), and the latest failures.\n' +
    'Keys: q, Ctrl-C or Ctrl-\\ quits, Ctrl-Z suspends. SIGTERM, SIGHUP and SIGQUIT end it (exit 143, 129,\n' +
    '131); the terminal is given back in every case. --once prints one frame and exits (for scripts); not on\n' +
    'a terminal, a frame is printed every interval (plain: separated by a blank line; json: one object per line).',
  args: [ROOT_ARG, { key: 'queue', description: 'comma-separated queues to show (default: all)', required: false, list: true }],
  options: [
    { key: 'once', flags: '--once', description: 'print one frame and exit', type: 'boolean' },
    { key: 'interval', flags: '--interval <seconds>', description: 'seconds between frames (0.2 to 3600; default 1)', type: 'string' },
    { key: 'minutes', flags: '--minutes <n>', description: 'minutes the charts span (1 to 1440; default 30)', type: 'int' },
    FORMAT(['plain', 'json'], 'plain'),
    VERBOSE,
    DEBUG,
  ],
  async run(input, ctx) {
    const queues = optionalQueues(input);
    const interval = input.interval === undefined ? 1 : Number(input.interval);
    if (!(Number.isFinite(interval) && interval >= 0.2 && interval <= 3600) || !/^\s*\d+(\.\d+)?\s*$/.test(String(input.interval ?? '1'))) {
      throw new DdmqError('INVALID_ARGUMENT', `invalid --interval ${JSON.stringify(input.interval)}: expected seconds, from 0.2 to 3600`);
    }
    const minutes = input.minutes === undefined ? 30 : Number(input.minutes);
    if (!(Number.isSafeInteger(minutes) && minutes >= 1 && minutes <= 1440)) {
      throw new DdmqError('INVALID_ARGUMENT', `invalid --minutes ${JSON.stringify(input.minutes)}: expected a whole number from 1 to 1440`);
    }
    // The drawing and the loop are loaded only here: no other command pays for them.
    const { runTop } = await import('../top-view.js');
    return runTop(input, ctx, { queues, interval, minutes, once: input.once === true, format: String(input.format) as 'plain' | 'json' });
  },
};
