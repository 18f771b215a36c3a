# Scenario `lockout`: lockout as a lever (spec §11.11). A third controller (hci2) holds a
# connection to the lock, Selects the guest's beacons before the guest can and answers each
# challenge with a guessed MAC. Two such failed handshakes (lockout_threshold = 2 here) lock
# the guest out (LK-LCK-1): its beacons are refused `locked_out`, with a fresh grant too,
# until the lockout ends by itself (lockout_duration_s = 30, LK-LCK-3); then it unlocks.
# The attacker keeps the link 6 s after its last steal: the guest's attempt then (5 s)
# still cannot reach the lock, and the next one starts well inside the lockout.
cp "$W/lock/lock.toml" /run/lock.toml
printf '\n[tunables]\nlockout_threshold = 2\nlockout_duration_s = 30\n' >> /run/lock.toml
LOCK_CONFIG=/run/lock.toml
start_issuer && start_lock || return 1
"$E2E" lockout-attacker --adapter hci2 --company-id "$COMPANY_ID" --steals 2 --timeout-s 40 --hold-s 6 \
  --out "$W/attacker.json" 2> "$W/logs/attacker.log" &
ATTACKER_PID=$!
wait_for 20 log_has attacker 'connected to the lock' || fail "the attacker did not connect to the lock"
# While the attacker holds the link the guest cannot reach the lock; its beacons are stolen.
guest stolen1 g1 hci1 --attempt-timeout-s 5
log_has lock 'locked out' || guest stolen2 g1 hci1 --attempt-timeout-s 5
wait "$ATTACKER_PID"
wait_for 5 log_has lock 'locked out' || fail "the lock did not lock the guest out"
mark locked_out
guest locked g1 hci1 --attempt-timeout-s 5 --timeout-s 5
wait_for 40 log_has lock 'lockout ended' || fail "the lockout did not end"
mark lockout_ended
guest after g1 hci1
wait_for 5 log_has issuer 'lock event: lockout_ended' || true
