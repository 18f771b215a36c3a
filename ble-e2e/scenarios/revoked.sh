# Scenario `revoked`: the guest unlocks, the issuer revokes it, then the guest (still
# holding its grant) is refused at the lock, and a fresh request from it gets no grant.
start_issuer && start_lock || return 1
guest g1 g1 hci1
issuer_ctl revoke-guest --guest "$G1_ID"
wait_for 15 log_has lock 'revocation applied' || fail "the lock never applied the revocation"
mark revoked
guest after_revoke g1 hci1 --attempt-timeout-s 8
guest fresh_request g1.fresh hci1 --timeout-s 6
