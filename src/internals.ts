/**
 * `ddmq/internals`: the building blocks under Broker, for tools that work on the tree
 * itself (inspectors, migrations, tests). Unstable: names and signatures here may change
 * in any release, minor or patch; programs that send and receive messages use `ddmq`.
 */
export { Queue } from './store/queue.js';
export type { QueueContext } from './store/host.js';
export { brokerInternals } from './store/internals.js';
export { FolderWatcher, type WakeReason, type WatchOptions } from './store/watch.js';
export { Message, decodeMessage, encodeMessage } from './format/message.js';
export {
  checkQueueName,
  compareReady,
  parseInFlightName,
  parseReadyName,
  type InFlightName,
  type ReadyName,
} from './format/names.js';
export { systemTimers } from './store/timers.js';
