# Scenario `replay`: a third controller (hci2) records the guest's beacons while it unlocks
# and re-advertises them after the guest stopped. The lock must not unlock again.
start_issuer && start_lock || return 1
"$E2E" replay-attacker --adapter hci2 --company-id "$COMPANY_ID" --stop-file /run/stop-capture \
  --replay-s 6 --out "$W/attacker.json" 2> "$W/logs/attacker.log" &
ATTACKER_PID=$!
wait_for 15 log_has attacker 'capturing' || fail "the attacker did not start"
guest g1 g1 hci1
touch /run/stop-capture
wait "$ATTACKER_PID"
mark attack_end
sleep 1
