#!/usr/bin/env bash
# Brings up the sshfs, GlusterFS and MooseFS rigs of shared/netfs (each export mounted twice, as
# two hosts see it), runs the given command with DDMQ_NETFS describing them, and takes
# them down again. Needs root (the rigs install their packages with apt-get).
#   bash scripts/with-netfs.sh npm test
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
netfs=${DDMQ_NETFS_DIR:-$here/../shared/netfs}
[ -f "$netfs/sshfs-up.sh" ] || { echo "with-netfs: no rigs at $netfs (set DDMQ_NETFS_DIR)" >&2; exit 2; }

down() {
  bash "$netfs/sshfs-down.sh" --purge >/dev/null 2>&1 || true
  bash "$netfs/gluster-down.sh" --purge >/dev/null 2>&1 || true
  bash "$netfs/moosefs-down.sh" --purge >/dev/null 2>&1 || true
}
trap down EXIT

rigs=()
# sshfs with its default (NFS-like) cache: listings up to ~21 s stale across mounts.
env=$(SSHFS_CACHE=on bash "$netfs/sshfs-up.sh" 2>/tmp/ddmq-sshfs-up.log) || { cat /tmp/ddmq-sshfs-up.log >&2; echo "with-netfs: sshfs did not come up" >&2; exit 1; }
eval "$env"
rigs+=("{\"name\":\"sshfs\",\"a\":\"$NETFS_MOUNT_A\",\"b\":\"$NETFS_MOUNT_B\",\"truth\":\"$NETFS_EXPORT\",\"cacheSeconds\":21}")
# GlusterFS with its default caches (~1 s), where two renames to one target can both succeed.
env=$(GLUSTER_CACHE=on bash "$netfs/gluster-up.sh" 2>/tmp/ddmq-gluster-up.log) || { cat /tmp/ddmq-gluster-up.log >&2; echo "with-netfs: GlusterFS did not come up" >&2; exit 1; }
eval "$env"
rigs+=("{\"name\":\"glusterfs\",\"a\":\"$NETFS_MOUNT_A\",\"b\":\"$NETFS_MOUNT_B\",\"truth\":\"$NETFS_EXPORT\",\"cacheSeconds\":2}")
# MooseFS with its default caches (directory names and attributes up to 1 s stale), where
# two renames to one target can both succeed, and modification times are whole seconds.
env=$(MOOSEFS_CACHE=on bash "$netfs/moosefs-up.sh" 2>/tmp/ddmq-moosefs-up.log) || { cat /tmp/ddmq-moosefs-up.log >&2; echo "with-netfs: MooseFS did not come up" >&2; exit 1; }
eval "$env"
rigs+=("{\"name\":\"moosefs\",\"a\":\"$NETFS_MOUNT_A\",\"b\":\"$NETFS_MOUNT_B\",\"truth\":\"$NETFS_EXPORT\",\"cacheSeconds\":2}")

DDMQ_NETFS="[$(IFS=,; echo "${rigs[*]}")]"
export DDMQ_NETFS
echo "with-netfs: $DDMQ_NETFS" >&2
"$@"
