# Helpers for the scenario scripts, sourced by init.sh inside the UML machine.
# Settings come from $W/env: ISSUER LOCK GUEST E2E (host paths of the binaries), BTVIRT,
# BTVIRT_RSSI, CONTROLLERS, LOCK_ID, LOCK_RSSI_THRESHOLD, BROKER.

PIDS=""

now_ms() { date +%s%3N; }

# mark NAME: a timestamped fact the runner reads from $W/marks.
mark() { echo "$1 $(now_ms) ${2:-}" >> "$W/marks"; }

fail() { mark fatal "$*"; echo "E2E-FATAL: $*"; return 1; }

# wait_for SECONDS CMD...: polls CMD every 100 ms.
wait_for() {
  t=$(( $1 * 10 )); shift
  while [ "$t" -gt 0 ]; do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1; t=$((t - 1))
  done
  return 1
}

has_adapter() {
  dbus-send --system --print-reply --dest=org.bluez "/org/bluez/$1" \
    org.freedesktop.DBus.Properties.Get string:org.bluez.Adapter1 string:Address
}

all_adapters() {
  i=0
  while [ "$i" -lt "$CONTROLLERS" ]; do has_adapter "hci$i" || return 1; i=$((i + 1)); done
}

# D-Bus, btvirt (CONTROLLERS controllers on one emulated radio), btmon, bluetoothd.
boot_stack() {
  mark boot
  dbus-daemon --system --fork --nopidfile || { fail "dbus-daemon did not start"; return 1; }
  BTVIRT_RSSI="$BTVIRT_RSSI" "$BTVIRT" -l"$CONTROLLERS" > "$W/logs/btvirt.log" 2>&1 &
  BTVIRT_PID=$!
  wait_for 10 test -e /sys/class/bluetooth/hci$((CONTROLLERS - 1)) || { fail "btvirt made no hci$((CONTROLLERS - 1))"; return 1; }
  # The trace is written to tmpfs and copied out at the end.
  btmon -w /run/hci.snoop > "$W/logs/btmon.log" 2>&1 &
  BTMON_PID=$!
  # --experimental: BlueZ 5.66 (Debian 12) applies an advertisement's MinInterval and
  # MaxInterval only with it; without, every set goes out at 1.28 s (docs/daemons.md).
  /usr/libexec/bluetooth/bluetoothd -n --experimental -f "$W/main.conf" > "$W/logs/bluetoothd.log" 2>&1 &
  BLUETOOTHD_PID=$!
  wait_for 20 all_adapters || { fail "bluetoothd did not publish hci0..hci$((CONTROLLERS - 1))"; return 1; }
  mark stack_up
}

log_has() { grep -q "$2" "$W/logs/$1.log"; }

# wait_log SECONDS PID NAME PATTERN: until logs/NAME.log has PATTERN; fails at once if PID
# (the daemon writing it) exited.
wait_log() {
  t=$(( $1 * 10 ))
  while [ "$t" -gt 0 ]; do
    log_has "$3" "$4" && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1; t=$((t - 1))
  done
  return 1
}

# The issuer with its embedded broker on 127.0.0.1:1883; its state is copied to tmpfs (the
# control socket cannot live on hostfs).
start_issuer() {
  cp -a "$W/issuer-state" /run/issuer
  "$ISSUER" --log-format json --state-dir /run/issuer run --listen 127.0.0.1:1883 \
    2> "$W/logs/issuer.log" &
  ISSUER_PID=$!
  PIDS="$PIDS $ISSUER_PID"
  wait_log 20 "$ISSUER_PID" issuer 'MQTT subscriptions confirmed' || { fail "issuer did not connect to its broker"; return 1; }
  mark issuer_up
}

# start_lock [EXTRA FLAGS...]: the lock on hci0, with $LOCK_CONFIG if set (else the
# lock.toml add-lock wrote).
start_lock() {
  RUST_LOG=info,latchkey_lock=debug "$LOCK" --config "${LOCK_CONFIG:-$W/lock/lock.toml}" --state-dir /run/lock-state \
    --lock-key-file "$W/lock/lock.key.pem" --issuer-public-key-file "$W/lock/issuer.pub.pem" --ble hci0 --broker "$BROKER" --rssi-threshold-dbm "$LOCK_RSSI_THRESHOLD" --log-format json "$@" \
    2> "$W/logs/lock.log" &
  LOCK_PID=$!
  PIDS="$PIDS $LOCK_PID"
  wait_log 20 "$LOCK_PID" lock 'lock radio started' || { fail "lock radio did not start"; return 1; }
  wait_log 20 "$LOCK_PID" lock 'MQTT connected' || { fail "lock did not connect to the broker"; return 1; }
  mark lock_up
}

# guest LABEL STATE ADAPTER [EXTRA FLAGS...]: one unlock attempt. STATE is the guest's
# state directory under /run, first copied from the enrolled $W/guests/NAME (NAME is STATE
# up to a dot: `g1.fresh` is g1 without the grant it holds in /run/g1). The JSON outcome
# goes to $W/LABEL.out, the exit status to $W/LABEL.exit, the log to logs/LABEL.log.
guest() {
  label=$1; state=$2; adapter=$3; shift 3
  [ -d "/run/$state" ] || cp -a "$W/guests/${state%%.*}" "/run/$state"
  mark "${label}_start"
  "$GUEST" unlock --state-dir "/run/$state" --lock "$LOCK_ID" --ble "$adapter" --log-format json --json "$@" \
    > "$W/$label.out" 2> "$W/logs/$label.log"
  echo $? > "$W/$label.exit"
  mark "${label}_end"
}

# issuer_ctl ARGS...: an issuer command through its control socket.
issuer_ctl() {
  "$ISSUER" --state-dir /run/issuer "$@" >> "$W/logs/issuer-ctl.log" 2>&1
}

# Stops every daemon (SIGTERM, then SIGKILL after 5 s), flushes btmon, writes $W/done and
# powers off. UML's exit status does not carry ours: the runner reads `done`.
finish() {
  for p in $PIDS; do kill -TERM "$p" 2>/dev/null; done
  for p in $PIDS; do
    t=50
    while kill -0 "$p" 2>/dev/null && [ "$t" -gt 0 ]; do sleep 0.1; t=$((t - 1)); done
    kill -KILL "$p" 2>/dev/null
  done
  [ -n "${BLUETOOTHD_PID:-}" ] && kill -TERM "$BLUETOOTHD_PID" 2>/dev/null
  if [ -n "${BTMON_PID:-}" ]; then
    kill -0 "$BTMON_PID" 2>/dev/null || mark btmon_died
    kill -INT "$BTMON_PID" 2>/dev/null
    wait "$BTMON_PID" 2>/dev/null
    cp /run/hci.snoop "$W/hci.snoop" 2>/dev/null
  fi
  mark done
  touch "$W/done"
  sync
  echo o > /proc/sysrq-trigger
  sleep 10
}
