/**
 * ddmq: a serverless, file-based message queue. A queue is a folder, a message is a
 * JSON file; every client does its share of the housekeeping.
 *
 * This is the stable API: what programs call and the types of its options and results.
 * Durations are in seconds in calls (leases, waits, delays) and in milliseconds, named
 * `…Ms`, in the options of `Broker.open`.
 * The building blocks below it (Queue, the file formats, the folder watcher) are in
 * `ddmq/internals`, for tools, and may change in any release.
 */
export {
  Broker,
  type BrokerOptions,
  type ClockState,
  type QueueEntry,
  type RecordsOptions,
  type RedriveOptions,
  type RedriveResult,
  type ReleaseResult,
  type StatsOptions,
  type StatsResult,
} from './store/broker.js';
export type {
  CleanOptions,
  CleanResult,
  ConsumeOneOptions,
  ConsumeOptions,
  MessageState,
  NackOptions,
  NackResult,
  Peeked,
  PeekOptions,
  PublishOptions,
  PurgeResult,
  QueueCounts,
} from './store/queue.js';
export type { Message, MessageFields, Requeue } from './format/message.js';
export { DdmqError, isDdmqError, type ErrorCode } from './format/errors.js';
export { DEFAULT_SETTINGS, type Settings, type SettingsLayer } from './format/settings.js';
export type { Outcome, RecordAction, RecordDetails, TaskRecord } from './format/records.js';
export type { CurrentCounts, OutcomeCounts, QueueStats, RuntimeSummary, Stats } from './format/stats.js';
export type { WorkerInfo, WorkerPresence } from './format/presence.js';
export type { RecordTail } from './store/record-reader.js';
export { VERSION } from './version.js';
export {
  work,
  messages,
  TaskInterrupted,
  type Handler,
  type HandlerContext,
  type MessagesOptions,
  type WorkOptions,
  type WorkEvent,
  type WorkEventType,
  type WorkStats,
  type WorkHandle,
} from './worker/work.js';
export { LeaseRenewer, type HeldLease, type LeaseHooks, type LeaseRenewerOptions } from './worker/lease.js';
export type { Timers } from './store/timers.js';
