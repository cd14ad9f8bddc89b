#!/usr/bin/env bash
# Install the Debian packages that the slow container and SLURM tests need
# (tests/test_containers.py, tests/test_slurm.py). Idempotent: a package that is
# already installed is skipped, and nothing is fetched when all of them are there.
#
#   podman buildah runc       build and run the images (crun fails on this host's
#                             cgroup setup, so the tests pass --runtime runc)
#   uidmap fuse-overlayfs     podman's recommended helpers (rootless and overlay)
#   debootstrap               the local Debian base image (no registry is reachable)
#   slurm-wlm slurmctld slurmd slurm-client munge
#                             the one-node SLURM cluster (22.05 on bookworm)
#
# Usage: .ci/install-system-deps.sh        (as root, or with sudo available)
set -euo pipefail

packages=(
    podman buildah runc uidmap fuse-overlayfs
    debootstrap
    slurm-wlm slurmctld slurmd slurm-client munge
)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-system-deps: all ${#packages[@]} packages already installed"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

echo "install-system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Daemons must not start at install time: the tests start slurmctld, slurmd and
# munged themselves and stop them by PID. policy-rc.d exit 101 blocks invoke-rc.d.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    created_policy=1
fi
trap '[ "$created_policy" -eq 1 ] && $SUDO rm -f "$policy"' EXIT
$SUDO apt-get install -y -qq "${missing[@]}"
echo "install-system-deps: done"
