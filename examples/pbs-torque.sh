#!/bin/bash
# pbs-torque.sh: the task farm of slurm-array.sh as a PBS/Torque job array. Publish
# the tasks first (publish.sh), then:
#   qsub pbs-torque.sh             (Torque: the -t line below)
# On PBS Pro / OpenPBS, whose qsub has -J and no -t, change that line to "#PBS -J 1-20".
#PBS -N ddmq-farm
#PBS -t 1-20
#PBS -l nodes=1:ppn=8
#PBS -l walltime=04:00:00
# At the walltime, PBS sends SIGTERM and, kill_delay seconds later, SIGKILL: ddmq stops
# taking tasks and gives back those still running after --grace (keep it under kill_delay).
set -euo pipefail
ROOT=${DDMQ_ROOT:-/shared/${USER:-$(id -un)}/ddmq}
# The task: DDMQ_TASK, or process-one.sh beside this script. The scheduler runs a copy of
# the script from elsewhere, so it is looked for where the job was submitted from (the
# examples folder, or the clone above it) too.
task=${DDMQ_TASK:-}
if [ -z "$task" ]; then
  for dir in "${PBS_O_WORKDIR:-.}" "${PBS_O_WORKDIR:-.}/examples" "$(dirname "$0")"; do
    if [ -x "$dir/process-one.sh" ]; then task=$dir/process-one.sh; break; fi
  done
fi
[ -n "$task" ] || { echo "no process-one.sh found: set DDMQ_TASK" >&2; exit 2; }
# PBS starts a job in $HOME: work where it was submitted, as Slurm does.
cd "${PBS_O_WORKDIR:-.}"
# Torque names the array index PBS_ARRAYID; PBS Pro, PBS_ARRAY_INDEX.
index=${PBS_ARRAYID:-${PBS_ARRAY_INDEX:-0}}
cores=${PBS_NUM_PPN:-${NCPUS:-1}}
mkdir -p "$ROOT/../joblog"

exec ddmq work "$ROOT" tasks \
  -j "$cores" --idle-exit "${IDLE_EXIT:-300}" --grace "${GRACE:-50}" \
  --joblog "$ROOT/../joblog/pbs-${PBS_JOBID:-%h-%p}-$index.tsv" \
  -- "$task" {}
