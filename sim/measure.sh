#!/usr/bin/env bash
# The real runs that sim/fixture.mjs turns into test/fixtures/sim-real-runs.json (and the
# README's sweep table): on local disk and each rig of /work/netfs.json, 1-16 consumers over
# mounts A and B (local disk: a folder in /var/tmp), tasks of 0 and 10 ms, 3 repeats each; then the same sweeps once more under
# --count-ops (metadata calls per task). Run after `npm run build`; OUT defaults to sim/runs.
#   bash sim/measure.sh [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-sim/runs}
mkdir -p "$out"
local_root=$(mktemp -d /var/tmp/ddmq-sim-measure-XXXXXX)
trap 'rm -rf "$local_root"' EXIT
target() { if [ "$1" = local ]; then echo "--root $local_root"; else echo "--rig $1"; fi; }
for rig in local moosefs glusterfs sshfs; do
  # shellcheck disable=SC2046
  node bench/farm.mjs $(target $rig) --consumers 1,2,4,8,16 --tasks 2000 --repeat 3 --json "$out/$rig-t0.json"
  # shellcheck disable=SC2046
  node bench/farm.mjs $(target $rig) --consumers 1,2,4,8,16 --tasks 500 --task-ms 10 --repeat 3 --json "$out/$rig-t10.json"
done
for rig in local moosefs glusterfs sshfs; do
  # shellcheck disable=SC2046
  node bench/farm.mjs $(target $rig) --consumers 1,2,4,8,16 --tasks 2000 --count-ops --json "$out/$rig-t0-ops.json"
  # shellcheck disable=SC2046
  node bench/farm.mjs $(target $rig) --consumers 1,2,4,8,16 --tasks 500 --task-ms 10 --count-ops --json "$out/$rig-t10-ops.json"
done
