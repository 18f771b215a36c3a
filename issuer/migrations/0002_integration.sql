-- Latchkey issuer registry, schema version 2: what the integrated daemon needs beyond
-- version 1 (issuer/src/store/db.rs applies it in one transaction and sets
-- PRAGMA user_version = 2). Never edit a migration that has shipped; add the next one.

-- The admin web counts failed logins in a window (web/throttle.rs): when the window's
-- first failure happened.
ALTER TABLE admin_users ADD COLUMN first_failure_ms INTEGER;

-- Per lock, the highest timestamp (the lock's clock, Unix ms) of the lock messages the
-- issuer accepted. The lock's messages arrive in order, so once it is at or past a grant's
-- not_after, no unlock event of that grant is still on its way (docs/policy.md, unlock
-- accounting).
ALTER TABLE locks ADD COLUMN lock_time_high_water_ms INTEGER;
UPDATE locks SET lock_time_high_water_ms = (
    SELECT max(a.lock_time_ms) FROM audit a
    WHERE a.lock_id = locks.lock_id AND a.source = 'lock' AND a.message_id IS NOT NULL
);

-- The lock's timestamp (Unix ms) of the accepted revocation_applied event of a grant:
-- the grant can produce no unlock after it.
ALTER TABLE grants ADD COLUMN revocation_applied_lock_ms INTEGER;
UPDATE grants SET revocation_applied_lock_ms = (
    SELECT min(a.lock_time_ms) FROM audit a
    WHERE a.source = 'lock' AND a.kind = 'revocation_applied'
      AND a.grant_id = grants.grant_id AND a.lock_id = grants.lock_id
);

-- Access rules follow the policy's roles (docs/policy.md): a `guest` must have an end and
-- an `admin` has no schedule or unlock limit. Rules written before (registry.json imports
-- and version 1 enrollments defaulted to `guest` without an end) meant unbounded access:
-- that is a `resident`.
UPDATE access SET role = 'resident' WHERE role = 'guest' AND valid_until IS NULL;
UPDATE access SET role = 'resident'
    WHERE role = 'admin' AND (schedule_json IS NOT NULL OR max_unlocks IS NOT NULL);
