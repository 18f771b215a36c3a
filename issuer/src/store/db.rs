//! The SQLite connection: the file (0600), its settings, and the versioned migrations in
//! `issuer/migrations/`. Also the small conversions between protocol values and columns.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::error::IssuerdError;
use crate::fsutil::{self, PRIVATE_FILE};

/// The migrations, in order: migration `i` (0-based) takes `user_version` from `i` to
/// `i + 1`. Append only; never edit one that has shipped.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_registry",
        include_str!("../../migrations/0001_registry.sql"),
    ),
    (
        "0002_integration",
        include_str!("../../migrations/0002_integration.sql"),
    ),
];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// How long a writer waits for another one (the daemon and a CLI command share the file).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Creates the database file mode 0600 if it does not exist (SQLite gives the `-wal` and
/// `-shm` files the database's mode), else checks that group and others cannot read it.
pub(crate) fn ensure_private_file(path: &Path) -> Result<(), IssuerdError> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE_FILE)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            fsutil::check_private(path, "registry database")
        }
        Err(e) => Err(IssuerdError::io("create", path)(e)),
    }
}

/// Opens the database with the settings every connection needs: WAL (the daemon reads
/// while a command writes), a busy timeout, foreign keys, full fsync on commit (a grant is
/// durable before it is published), and secure delete (a replaced sealed key leaves no copy
/// in free pages).
pub(crate) fn connect(path: &Path) -> Result<Connection, IssuerdError> {
    let err = |action| IssuerdError::db(path, action);
    let conn = Connection::open(path).map_err(err("open"))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(err("set busy timeout"))?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(err("enable WAL"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(IssuerdError::bad_file(
            "registry database",
            path,
            format!("journal mode {mode} instead of WAL (is the file system local?)"),
        ));
    }
    for (name, value) in [
        ("foreign_keys", "ON"),
        ("synchronous", "FULL"),
        ("secure_delete", "ON"),
        ("trusted_schema", "OFF"),
    ] {
        conn.pragma_update(None, name, value)
            .map_err(err("configure the connection"))?;
    }
    Ok(conn)
}

/// Applies the missing migrations, each in its own transaction with its `user_version`.
/// A database from a newer binary is refused before anything is written.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), IssuerdError> {
    let version = user_version(conn, path)?;
    if version > SCHEMA_VERSION {
        return Err(IssuerdError::DatabaseTooNew {
            path: path.to_owned(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    for (index, (name, sql)) in MIGRATIONS.iter().enumerate() {
        let target = index as i64 + 1;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(IssuerdError::db(path, "begin a migration"))?;
        // Another process may have migrated meanwhile: decide under the write lock.
        if user_version(&tx, path)? >= target {
            continue;
        }
        tx.execute_batch(sql)
            .map_err(IssuerdError::db(path, "apply a migration"))
            .map_err(|e| with_migration(e, name))?;
        tx.pragma_update(None, "user_version", target)
            .map_err(IssuerdError::db(path, "set the schema version"))?;
        tx.commit()
            .map_err(IssuerdError::db(path, "commit a migration"))?;
        tracing::info!(path = %path.display(), migration = name, version = target, "registry schema migrated");
    }
    Ok(())
}

fn with_migration(e: IssuerdError, name: &str) -> IssuerdError {
    match e {
        IssuerdError::Database { path, source, .. } => IssuerdError::BadFile {
            what: "registry database",
            path,
            detail: format!("migration {name} failed: {source}"),
        },
        other => other,
    }
}

/// A write transaction, taken at once (so a busy database waits here, not at commit).
pub(crate) fn begin<'c>(
    conn: &'c mut Connection,
    path: &Path,
) -> Result<rusqlite::Transaction<'c>, IssuerdError> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(IssuerdError::db(path, "begin a transaction"))
}

pub(crate) fn user_version(conn: &Connection, path: &Path) -> Result<i64, IssuerdError> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(IssuerdError::db(path, "read the schema version"))
}

/// `PRAGMA data_version`: changes when another connection commits.
pub(crate) fn data_version(conn: &Connection, path: &Path) -> Result<i64, IssuerdError> {
    conn.pragma_query_value(None, "data_version", |r| r.get(0))
        .map_err(IssuerdError::db(path, "read data_version"))
}

/// A `meta` value.
pub(crate) fn meta(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()
}

/// Sets a `meta` value.
pub(crate) fn set_meta(conn: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [key, value],
    )
    .map(|_| ())
}

// ----------------------------------------------------------------------- conversions

/// A Unix time or count as a column: SQLite integers are signed, and nothing this issuer
/// stores comes near 2^63.
pub(crate) fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A column as a Unix time or count; a negative value (edited by hand) reads as 0.
pub(crate) fn uint(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// [`uint`] for a nullable column.
pub(crate) fn uint_opt(v: Option<i64>) -> Option<u64> {
    v.map(uint)
}

/// Parses an identifier column, naming the row when it is not one.
pub(crate) fn parse_id<T>(table: &'static str, text: &str) -> Result<T, IssuerdError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|e| IssuerdError::CorruptRow {
        table,
        key: text.chars().take(64).collect(),
        detail: format!("not an identifier: {e}"),
    })
}

/// [`parse_id`] for a nullable column.
pub(crate) fn parse_id_opt<T>(
    table: &'static str,
    text: Option<&str>,
) -> Result<Option<T>, IssuerdError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    text.map(|t| parse_id(table, t)).transpose()
}
