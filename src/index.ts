/**
 * ddmq: a serverless, file-based message queue. A queue is a folder, a message is a
 * JSON file; every client does its share of the housekeeping.
 */
export { Broker, type BrokerOptions } from './store/broker.js';
export {
  Queue,
  type CleanOptions,
  type CleanResult,
  type ConsumeOptions,
  type NackOptions,
  type NackResult,
  type PublishOptions,
  type QueueCounts,
  type MessageState,
  type PeekOptions,
  type Peeked,
} from './store/queue.js';
export { Message, type MessageFields, type Requeue, decodeMessage, encodeMessage } from './format/message.js';
export { DdmqError, isDdmqError, type ErrorCode } from './format/errors.js';
export { DEFAULT_SETTINGS, type Settings, type SettingsLayer } from './format/settings.js';
export {
  checkQueueName,
  compareReady,
  parseInFlightName,
  parseReadyName,
  type InFlightName,
  type ReadyName,
} from './format/names.js';
export { VERSION } from './version.js';
export {
  work,
  messages,
  TaskInterrupted,
  type Handler,
  type WorkOptions,
  type WorkEvent,
  type WorkEventType,
  type WorkStats,
  type WorkHandle,
} from './worker/work.js';
export { FolderWatcher, type WatchOptions } from './store/watch.js';
export { LeaseRenewer, type HeldLease, type LeaseHooks, type LeaseStore } from './worker/lease.js';
export { systemTimers, type Timers } from './store/timers.js';
