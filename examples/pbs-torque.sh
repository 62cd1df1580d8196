#!/bin/bash
# pbs-torque.sh: the task farm of slurm-array.sh as a PBS/Torque job array. Publish
# the tasks first (publish.sh), then:
#   qsub pbs-torque.sh             (Torque: the -t line below)
#   qsub -J 1-20 pbs-torque.sh     (PBS Pro / OpenPBS, which take -J, not -t)
#PBS -N ddmq-farm
#PBS -t 1-20
#PBS -l nodes=1:ppn=8
#PBS -l walltime=04:00:00
# At the walltime, PBS sends SIGTERM and, kill_delay seconds later, SIGKILL: ddmq stops
# taking tasks and gives back those still running after --grace (keep it under kill_delay).
set -euo pipefail
ROOT=${DDMQ_ROOT:-/shared/$USER/ddmq}
here=${PBS_O_WORKDIR:-$(dirname "$0")}
# Torque names the array index PBS_ARRAYID; PBS Pro, PBS_ARRAY_INDEX.
index=${PBS_ARRAYID:-${PBS_ARRAY_INDEX:-0}}
cores=${PBS_NUM_PPN:-${NCPUS:-1}}
mkdir -p "$ROOT/../joblog"

exec ddmq work "$ROOT" tasks \
  -j "$cores" --idle-exit "${IDLE_EXIT:-300}" --grace "${GRACE:-50}" \
  --joblog "$ROOT/../joblog/pbs-${PBS_JOBID:-%h-%p}-$index.tsv" \
  -- "$here/process-one.sh" {}
