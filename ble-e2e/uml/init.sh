#!/bin/sh
# PID 1 of the User-Mode Linux machine a BLE end-to-end scenario boots (src/uml.rs).
# $1 is the run's folder on the host. It is mounted read-write at /run/w and holds `env`
# (written by the runner), lib.sh and scenario.sh; logs, marks, the btmon trace and `done`
# go back there. The host's root is mounted read-only: host-built binaries run unchanged.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mountpoint -q /dev || mount -t devtmpfs devtmpfs /dev
# Writable places over the read-only host root. Not /tmp: the project (binaries, the
# btvirt cache) may live there, and a tmpfs would hide it (run.rs refuses hidden paths).
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /var/lib/bluetooth
mkdir -p /run/w /run/dbus /run/tmp
export TMPDIR=/run/tmp
mount -t hostfs hostfs /run/w -o "$1" || { echo "E2E-FATAL: cannot mount $1"; echo o > /proc/sysrq-trigger; }
W=/run/w
mkdir -p "$W/logs"
ip link set lo up 2>/dev/null || ifconfig lo up 2>/dev/null
. "$W/env"
. "$W/lib.sh"
boot_stack && . "$W/scenario.sh"
finish
