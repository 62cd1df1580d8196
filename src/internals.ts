/**
 * `ddmq/internals`: the building blocks under Broker, for tools that work on the tree
 * itself (inspectors, migrations, tests). Unstable: names and signatures here may change
 * in any release, minor or patch; programs that send and receive messages use `ddmq`.
 */
export { Queue } from './store/queue.js';
export type { Clock, DeadLetterSink, QueueContext, RecordSink, Reporter, SettingsSource, StoreConfig } from './store/host.js';
export { SUBFOLDERS, type FolderCheck, type OpenFolder, type PinnedQueue, type QueueFolders, type QueuePaths, type Subfolder } from './store/folders.js';
export type { PresenceSnapshot } from './store/presence.js';
export type { History } from './store/history.js';
export type { SettingsCache } from './store/settings-cache.js';
export { brokerInternals, type BrokerInternals } from './store/internals.js';
export { FolderWatcher, type WakeReason, type WatchFs, type WatchOptions } from './store/watch.js';
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
