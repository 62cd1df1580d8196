#!/bin/bash
# publish.sh INPUT_DIR: make the queues and publish one task per *.txt file under
# INPUT_DIR. Run it once, from the login node, before submitting slurm-array.sh or
# pbs-torque.sh; both read the same tree, so the same queue feeds either scheduler.
set -euo pipefail
ROOT=${DDMQ_ROOT:-/shared/${USER:-$(id -un)}/ddmq}
input=${1:?usage: publish.sh INPUT_DIR}

ddmq create -f "$ROOT" tasks,tasks-failed -s
# A task may run 10 minutes; a failing one is tried 4 times, 60 s, 120 s, 240 s apart,
# then kept in tasks-failed (ddmq peek / ddmq redrive).
ddmq settings "$ROOT" tasks -s --set message_timeout=600 --set requeue_limit=3 \
  --set dead_letter=tasks-failed --set retry_delay=60 --set retry_backoff=2
find "$input" -type f -name '*.txt' | ddmq publish "$ROOT" tasks --file - -s
ddmq view "$ROOT" tasks
