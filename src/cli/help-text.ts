/**
 * The text of `ddmq --help` after the command list, kept apart from program.ts so that
 * the man page (man-page.ts) says the same without loading commander.
 */

/** One line per exit code (see EXIT in spec.ts), indented as --help shows them. */
export const EXIT_CODES = `  0  success
  1  internal error (a bug in ddmq; run again with -d for the stack trace)
  2  bad arguments or input, missing root or queue, invalid names or settings
  3  consume: no message in the queue
  4  the file system refused (permission, disk full, read-only, ...)
  5  ack/nack/del_msg: a message is not in flight (lease lost) or not found
  6  work: one or more tasks failed (their messages were nacked)
  7  a command over several queues handled some and failed for others (each named on stderr)
  129, 130, 143  work: stopped by SIGHUP, SIGINT or SIGTERM (running tasks got the grace
                 period, then were ended and their messages released)
  129, 131, 143  top: stopped by SIGHUP, SIGQUIT or SIGTERM (q, Ctrl-C and SIGINT: 0)`;

export const EXAMPLES = `  ddmq create -f /tmp/ddmq tasks
  ddmq publish /tmp/ddmq tasks "Hello World!"
  ddmq consume /tmp/ddmq tasks            # prints the message as JSON
  ddmq ack /tmp/ddmq tasks FILENAME       # FILENAME as consume printed it
  ddmq view /tmp/ddmq
  source <(ddmq completion bash)          # tab completion (also zsh, fish); ddmq man: the manual`;
