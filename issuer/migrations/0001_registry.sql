-- Latchkey issuer registry, schema version 1 (issuer/src/store/db.rs applies it in one
-- transaction and sets PRAGMA user_version = 1).
--
-- Identifiers are lowercase hex text (their protocol text form). Times ending in _ms are
-- Unix milliseconds; issued_at, not_before, not_after, valid_from and valid_until are Unix
-- seconds, as in the protocol. No secret is stored in clear: an enrollment key is
-- AES-256-GCM-sealed under the key-encryption key (KEK), which never enters the database.

-- Key/value settings: `kek_check` = hex(HMAC-SHA256(KEK, "latchkey/v1 registry kek-check")).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE locks (
    lock_id           TEXT PRIMARY KEY NOT NULL CHECK (length(lock_id) = 32),
    name              TEXT NOT NULL DEFAULT '',
    public_key_pem    TEXT NOT NULL,
    -- IANA name; schedules are evaluated in the lock's local time.
    timezone          TEXT NOT NULL DEFAULT 'UTC',
    latitude          REAL CHECK (latitude IS NULL OR latitude BETWEEN -90 AND 90),
    longitude         REAL CHECK (longitude IS NULL OR longitude BETWEEN -180 AND 180),
    created_at_ms     INTEGER NOT NULL,
    key_rotated_at_ms INTEGER,
    last_seen_ms      INTEGER,
    last_status_json  TEXT,
    CHECK ((latitude IS NULL) = (longitude IS NULL))
) STRICT;

CREATE TABLE guests (
    guest_id              TEXT PRIMARY KEY NOT NULL CHECK (length(guest_id) = 32),
    name                  TEXT NOT NULL DEFAULT '',
    -- nonce(12) ‖ ciphertext(32) ‖ tag(16); AAD binds it to guest_id and key_version.
    enrollment_key_sealed BLOB NOT NULL CHECK (length(enrollment_key_sealed) = 60),
    key_version           INTEGER NOT NULL CHECK (key_version >= 1),
    created_at_ms         INTEGER NOT NULL,
    key_rotated_at_ms     INTEGER,
    revoked_at_ms         INTEGER,
    last_used_ms          INTEGER
) STRICT;

-- Who may open which lock, and when. A guest with no row for a lock is not authorized there.
CREATE TABLE access (
    guest_id      TEXT NOT NULL REFERENCES guests (guest_id) ON DELETE CASCADE,
    lock_id       TEXT NOT NULL REFERENCES locks (lock_id) ON DELETE CASCADE,
    role          TEXT NOT NULL DEFAULT 'guest' CHECK (role IN ('admin', 'resident', 'guest')),
    valid_from    INTEGER,
    valid_until   INTEGER,
    -- The weekly schedule as given (its grammar belongs to the policy module).
    schedule_json TEXT,
    max_unlocks   INTEGER CHECK (max_unlocks IS NULL OR max_unlocks >= 1),
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    PRIMARY KEY (guest_id, lock_id),
    CHECK (valid_from IS NULL OR valid_until IS NULL OR valid_from < valid_until)
) STRICT;
CREATE INDEX access_by_lock ON access (lock_id);

-- Every grant issued, and its revocation. Live: not revoked and not_after in the future.
-- Pending revocation: payload set, not confirmed, not_after in the future.
CREATE TABLE grants (
    grant_id                   TEXT PRIMARY KEY NOT NULL CHECK (length(grant_id) = 32),
    lock_id                    TEXT NOT NULL REFERENCES locks (lock_id),
    -- NULL only for revocations imported from revocations.json, which do not name it.
    guest_id                   TEXT REFERENCES guests (guest_id),
    session_id                 TEXT NOT NULL CHECK (length(session_id) = 16),
    issued_at                  INTEGER,
    not_before                 INTEGER,
    not_after                  INTEGER NOT NULL,
    max_unlocks                INTEGER NOT NULL DEFAULT 0 CHECK (max_unlocks >= 0),
    unlocks                    INTEGER NOT NULL DEFAULT 0 CHECK (unlocks >= 0),
    installed_at_ms            INTEGER,
    revoked_at_ms              INTEGER,
    revocation_payload         BLOB,
    revocation_publishes       INTEGER NOT NULL DEFAULT 0,
    revocation_confirmed_at_ms INTEGER,
    CHECK (revocation_payload IS NULL OR revoked_at_ms IS NOT NULL)
) STRICT;
CREATE INDEX grants_by_guest ON grants (guest_id, lock_id, not_after);
CREATE INDEX grants_by_lock ON grants (lock_id, not_after);
CREATE INDEX grants_pending_revocation ON grants (not_after)
    WHERE revocation_payload IS NOT NULL AND revocation_confirmed_at_ms IS NULL;

-- What happened. Verified lock messages carry their message id: UNIQUE (lock_id, message_id)
-- recognises a redelivery and, after a restart, restores the issuer's replay cache. Refused
-- messages are recorded without the id they claim.
CREATE TABLE audit (
    id           INTEGER PRIMARY KEY,
    at_ms        INTEGER NOT NULL,
    source       TEXT NOT NULL CHECK (source IN ('issuer', 'lock', 'admin')),
    kind         TEXT NOT NULL,
    reason       TEXT,
    reason_code  INTEGER,
    lock_id      TEXT,
    guest_id     TEXT,
    grant_id     TEXT,
    session_id   TEXT,
    message_id   TEXT,
    lock_time_ms INTEGER,
    actor        TEXT,
    detail_json  TEXT,
    UNIQUE (lock_id, message_id)
) STRICT;
CREATE INDEX audit_by_time ON audit (at_ms);
CREATE INDEX audit_by_lock ON audit (lock_id, at_ms);
CREATE INDEX audit_by_guest ON audit (guest_id, at_ms);
CREATE INDEX audit_by_kind ON audit (kind, at_ms);

CREATE TABLE alerts (
    alert_id           TEXT PRIMARY KEY NOT NULL,
    at_ms              INTEGER NOT NULL,
    kind               TEXT NOT NULL,
    severity           TEXT NOT NULL,
    score              REAL NOT NULL,
    lock_id            TEXT,
    guest_id           TEXT,
    detail_json        TEXT NOT NULL DEFAULT '{}',
    acknowledged_at_ms INTEGER,
    acknowledged_by    TEXT
) STRICT;
CREATE INDEX alerts_by_time ON alerts (at_ms);

CREATE TABLE admin_users (
    name                   TEXT PRIMARY KEY NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    -- argon2id PHC string.
    password_hash          TEXT NOT NULL,
    created_at_ms          INTEGER NOT NULL,
    password_changed_at_ms INTEGER NOT NULL,
    failed_logins          INTEGER NOT NULL DEFAULT 0,
    locked_until_ms        INTEGER,
    last_login_ms          INTEGER
) STRICT;

-- Web sessions; the cookie's token is stored only as its SHA-256.
CREATE TABLE admin_sessions (
    token_sha256  TEXT PRIMARY KEY NOT NULL CHECK (length(token_sha256) = 64),
    user          TEXT NOT NULL REFERENCES admin_users (name) ON DELETE CASCADE,
    csrf_token    TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    last_seen_ms  INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX admin_sessions_by_user ON admin_sessions (user);
