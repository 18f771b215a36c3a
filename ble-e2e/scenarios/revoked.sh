# Scenario `revoked`: the guest unlocks, the issuer revokes it; the guest, still holding its
# grant, tries again: the lock names the revoked session's beacons (LK-REV-5) and arms
# nothing, so the guest drops the grant and asks for a fresh one, which the issuer refuses.
start_issuer && start_lock || return 1
guest g1 g1 hci1
issuer_ctl revoke-guest --guest "$G1_ID"
wait_for 15 log_has lock 'revocation applied' || fail "the lock never applied the revocation"
mark revoked
guest after_revoke g1 hci1 --attempt-timeout-s 8 --timeout-s 6
# The lock's rejection event reaches the issuer.
wait_for 5 log_has issuer 'session_revoked' || true
