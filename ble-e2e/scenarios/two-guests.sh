# Scenario `two-guests`: two guests (hci1, hci2) unlock at the same time; the lock serves
# both.
start_issuer && start_lock || return 1
guest g1 g1 hci1 &
G1_PID=$!
guest g2 g2 hci2 &
G2_PID=$!
wait "$G1_PID"
wait "$G2_PID"
