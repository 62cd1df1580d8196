/**
 * `ddmq work --joblog FILE`: one tab-separated line per finished task, after a header, in
 * the manner of GNU parallel's --joblog. Its first eight columns are parallel's (Seq, Host,
 * Starttime, JobRuntime, Send, Receive, Exitval, Signal); ddmq's own follow (Queue,
 * MessageId, Attempt, Outcome, Stdout, Stderr), and Command comes last, as in parallel.
 *
 * The file is opened once, for appending, and each line is written with a single write()
 * of the whole line. The header is written only when the file is empty at the start. One
 * file per worker: two workers appending to one file on a network file system can mix
 * their lines, and both may write a header; the placeholders in the name (%h, %p, %j)
 * give each its own.
 */
import * as fs from 'node:fs';
import { constants, hostname } from 'node:os';
import { dirname } from 'node:path';
import { DdmqError } from '../format/errors.js';
import { makeFolderFor } from './make-folder.js';

export const JOBLOG_COLUMNS = [
  'Seq',
  'Host',
  'Starttime',
  'JobRuntime',
  'Send',
  'Receive',
  'Exitval',
  'Signal',
  'Queue',
  'MessageId',
  'Attempt',
  'Outcome',
  'Stdout',
  'Stderr',
  'Command',
] as const;

export interface JoblogEntry {
  seq: number;
  host: string;
  /** Epoch milliseconds at which the command was started. */
  start: number;
  /** Milliseconds from the start until no process of the task was left. */
  runtimeMs: number;
  /** Bytes written to the command's standard input (the message text). */
  sent: number;
  /** Bytes the command wrote to its standard output and standard error. */
  received: number;
  /** The exit code, or -1 if the command did not exit by itself (a signal) or could not start. */
  exitCode: number | null;
  /** The signal that ended the command, if any. */
  signal: NodeJS.Signals | null;
  queue: string;
  messageId: string;
  attempt: number;
  outcome: string;
  stdout: string | null;
  stderr: string | null;
  command: string[];
}

/**
 * The file name with its placeholders filled in: %h the host name, %p the worker's pid,
 * %j the Slurm job (JOBID_TASKID in an array task, as Slurm's own %A_%a; else
 * $SLURM_JOB_ID; outside Slurm, HOST-PID), %% a %.
 */
export function expandPlaceholders(name: string, env: NodeJS.ProcessEnv = process.env, host = hostname(), pid = process.pid): string {
  return name.replace(/%(.?)/gs, (all, c: string) => {
    switch (c) {
      case 'h':
        return host;
      case 'p':
        return String(pid);
      case 'j':
        if (env.SLURM_ARRAY_JOB_ID && env.SLURM_ARRAY_TASK_ID) return `${env.SLURM_ARRAY_JOB_ID}_${env.SLURM_ARRAY_TASK_ID}`;
        if (env.SLURM_JOB_ID) return env.SLURM_JOB_ID;
        return `${host}-${pid}`;
      case '%':
        return '%';
      default:
        throw new DdmqError('INVALID_ARGUMENT', `${JSON.stringify(name)}: unknown placeholder ${JSON.stringify(all)} (known: %h host, %p pid, %j Slurm job, %% a %)`);
    }
  });
}

/** A field as it may stand in a tab-separated line: tabs, newlines and backslashes escaped. */
export function tsvField(value: string): string {
  return value.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'));
}

/** A command as one line: words with anything but safe characters single-quoted, as a shell reads them. */
export function commandLine(words: string[]): string {
  return words.map((w) => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replaceAll("'", `'\\''`)}'`)).join(' ');
}

const SIGNAL_NUMBERS: Record<string, number> = constants.signals;

export function joblogLine(e: JoblogEntry): string {
  const fields = [
    String(e.seq),
    e.host,
    (e.start / 1000).toFixed(3),
    (e.runtimeMs / 1000).toFixed(3),
    String(e.sent),
    String(e.received),
    String(e.exitCode ?? -1),
    String(e.signal === null ? 0 : (SIGNAL_NUMBERS[e.signal] ?? 0)),
    e.queue,
    e.messageId,
    String(e.attempt),
    e.outcome,
    e.stdout ?? '-',
    e.stderr ?? '-',
    commandLine(e.command),
  ];
  return `${fields.map(tsvField).join('\t')}\n`;
}

export class Joblog {
  private constructor(
    readonly path: string,
    private fd: number,
  ) {}

  /** Opens (appending; made with its folder if missing) and writes the header if the file is empty. A link is not followed. */
  static open(path: string): Joblog {
    try {
      makeFolderFor('--joblog', path, dirname(path));
      // O_NONBLOCK: a FIFO without a reader fails (ENXIO) instead of blocking the worker for ever.
      const fd = fs.openSync(path, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK, 0o666);
      const log = new Joblog(path, fd);
      if (!fs.fstatSync(fd).isFile()) {
        fs.closeSync(fd);
        throw new DdmqError('INVALID_ARGUMENT', `--joblog ${path}: not a regular file`);
      }
      if (fs.fstatSync(fd).size === 0) log.write(`${JOBLOG_COLUMNS.join('\t')}\n`);
      return log;
    } catch (err) {
      if (err instanceof DdmqError) throw err;
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ENXIO') throw new DdmqError('INVALID_ARGUMENT', `--joblog ${path}: not a regular file`, { path });
      if (e.code === 'ELOOP') throw new DdmqError('UNSAFE_PATH', `--joblog ${path}: a symbolic link; ddmq does not follow it`, { path });
      throw new DdmqError('IO', `--joblog ${path}: ${e.message}`, { path, osCode: e.code });
    }
  }

  /** One line, written whole by one write(). */
  write(line: string): void {
    const bytes = Buffer.from(line);
    const n = fs.writeSync(this.fd, bytes);
    if (n !== bytes.length) throw new Error(`short write to ${this.path} (${n} of ${bytes.length} bytes)`);
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}
