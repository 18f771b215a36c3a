# Scenario `advert-flags`: BlueZ accepts the guest's beacon in a legacy advertisement, as
# built for production (non-connectable: BlueZ adds no Flags) and in the worst case with
# the 3-byte Flags AD (--beacon-flags); the lock unlocks with both. The runner checks the
# HCI trace (btmon) and bluetoothd's log.
start_issuer && start_lock || return 1
guest plain g1 hci1
guest flags g1 hci1 --beacon-flags
