# Scenario `rssi-too-low`: the guest's beacons reach the lock below its RSSI threshold
# (btvirt reports them at -90 dBm, the lock wants -70): no unlock, the reason is logged.
start_issuer && start_lock && guest g1 g1 hci1 --attempt-timeout-s 8
