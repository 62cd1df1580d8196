#!/usr/bin/env python3
"""Python and TypeScript sharing a queue: this script publishes tasks for worker.ts and
collects the results it publishes. It needs only Python 3's standard library: it runs the
`ddmq` command and reads its --format json output (one JSON object per line).

    python3 examples/producer.py publish ROOT FILE...   # one task per file, to `tasks`
    npx tsx examples/worker.ts ROOT                      # the TypeScript side does them
    python3 examples/producer.py collect ROOT            # every result, from `results`

The original Python ddmq package (pip install ddmq) reads and writes the same tree, so a
Python program may use its library instead of the command; see the README, "Working with
the original Python tool", for where the two differ.
"""
import json
import os
import subprocess
import sys

DDMQ = os.environ.get("DDMQ", "ddmq")
EMPTY = 3  # ddmq consume's exit code when the queue has no message


def ddmq(*args):
    """Runs ddmq; returns its exit code and the JSON objects it printed."""
    run = subprocess.run([DDMQ, *args, "--format", "json"], capture_output=True, text=True)
    if run.returncode not in (0, EMPTY):
        sys.exit(f"ddmq {args[0]} failed ({run.returncode}): {run.stderr.strip()}")
    return run.returncode, [json.loads(line) for line in run.stdout.splitlines() if line]


def publish(root, files):
    for path in files:
        task = json.dumps({"file": os.path.abspath(path)})
        _, [msg] = ddmq("publish", root, "tasks", task, "--json-message", "-f")
        print(f"published {msg['id']}: {path}")


def collect(root):
    """Takes every result, 10 at a time, prints it, and acks it once printed."""
    while True:
        code, msgs = ddmq("consume", root, "results", "-n", "10", "-f")
        if code == EMPTY or not msgs:
            return
        for msg in msgs:
            result = msg["message"]
            print(f"{result['file']}\t{result['words']}")
        ddmq("ack", root, "results", ",".join(m["filename"] for m in msgs))


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in ("publish", "collect"):
        sys.exit(__doc__)
    if sys.argv[1] == "publish":
        publish(sys.argv[2], sys.argv[3:])
    else:
        collect(sys.argv[2])
