# Scenario `unlock`: one guest (hci1) unlocks the lock (hci0) over real BlueZ.
start_issuer && start_lock && guest g1 g1 hci1
