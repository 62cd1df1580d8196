#!/bin/bash
# slurm-array.sh: a task farm as a Slurm job array. Each array task is one worker that
# runs process-one.sh on the queue's tasks, as many at once as it has cores, and ends
# once nothing is left to run. Publish the tasks first (publish.sh), then:
#   sbatch slurm-array.sh
#SBATCH --job-name=ddmq-farm
#SBATCH --array=1-20
#SBATCH --cpus-per-task=8
#SBATCH --time=04:00:00
#SBATCH --signal=B:TERM@120
# --signal: TERM 2 minutes before the time limit; ddmq then takes no more tasks, lets the
# running ones finish for --grace 100 s, ends the rest and gives them back to the queue
# (untried, for the other array tasks), and exits 143.
set -euo pipefail
ROOT=${DDMQ_ROOT:-/shared/${USER:-$(id -un)}/ddmq}
# The task: DDMQ_TASK, or process-one.sh beside this script. The scheduler runs a copy of
# the script from elsewhere, so it is looked for where the job was submitted from (the
# examples folder, or the clone above it) too.
task=${DDMQ_TASK:-}
if [ -z "$task" ]; then
  for dir in "${SLURM_SUBMIT_DIR:-.}" "${SLURM_SUBMIT_DIR:-.}/examples" "$(dirname "$0")"; do
    if [ -x "$dir/process-one.sh" ]; then task=$dir/process-one.sh; break; fi
  done
fi
[ -n "$task" ] || { echo "no process-one.sh found: set DDMQ_TASK" >&2; exit 2; }
mkdir -p "$ROOT/../joblog"

# --idle-exit 300: end once, for 5 minutes, nothing was ready, due, or in flight in
# another array task (which may yet fail and give its task back).
# --joblog: one file per array task, %j being JOBID_TASKID.
exec ddmq work "$ROOT" tasks \
  -j "${SLURM_CPUS_PER_TASK:-1}" --idle-exit "${IDLE_EXIT:-300}" --grace 100 \
  --joblog "$ROOT/../joblog/%j.tsv" \
  -- "$task" {}
