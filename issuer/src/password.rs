//! Operator passwords, the one place they are hashed and checked: argon2id (RFC 9106) with
//! the crate's defaults (19 MiB, 2 passes, 1 lane — OWASP's recommendation), stored as PHC
//! strings (`$argon2id$v=19$m=19456,t=2,p=1$…`) in `admin_users.password_hash`.
//! `admin-user add|passwd` hash with [`hash_new_password`], the admin web's login checks
//! with [`verify_password`].

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2};

/// Longest password accepted (bytes); longer input is refused before hashing.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Shortest password an operator may set (characters).
pub const MIN_PASSWORD_CHARS: usize = 10;

/// A password that cannot be hashed or set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PasswordError(pub String);

/// Hashes `password` with argon2id and a fresh random salt; returns the PHC string.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError(format!(
            "passwords are at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| PasswordError(format!("hashing failed: {e}")))
}

/// Hashes a password an operator chose: at least [`MIN_PASSWORD_CHARS`] characters.
pub fn hash_new_password(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordError(format!(
            "a password needs {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_BYTES} characters"
        )));
    }
    hash_password(password)
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordCheck {
    /// The password matches.
    Match,
    /// It does not.
    Mismatch,
    /// The stored hash is not an argon2id PHC string (misconfigured account; logged).
    UnusableHash(String),
}

/// Checks `password` against the PHC string `stored` (argon2id only: a stored argon2i/d or
/// other hash is refused, so a weaker hash cannot be slipped into the table). CPU-heavy:
/// call it from a blocking thread.
pub fn verify_password(password: &str, stored: &str) -> PasswordCheck {
    let hash = match PasswordHash::new(stored) {
        Ok(h) => h,
        Err(e) => return PasswordCheck::UnusableHash(format!("not a PHC string: {e}")),
    };
    if hash.algorithm != Algorithm::Argon2id.ident() {
        return PasswordCheck::UnusableHash(format!(
            "algorithm {} is not argon2id",
            hash.algorithm
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return PasswordCheck::Mismatch;
    }
    match Argon2::default().verify_password(password.as_bytes(), &hash) {
        Ok(()) => PasswordCheck::Match,
        Err(argon2::password_hash::Error::PasswordInvalid) => PasswordCheck::Mismatch,
        Err(e) => PasswordCheck::UnusableHash(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_an_argon2id_phc_string_that_verifies() -> Result<(), PasswordError> {
        let phc = hash_password("correct horse")?;
        assert!(phc.starts_with("$argon2id$v=19$"), "{phc}");
        assert_eq!(verify_password("correct horse", &phc), PasswordCheck::Match);
        assert_eq!(
            verify_password("correct hors", &phc),
            PasswordCheck::Mismatch
        );
        Ok(())
    }

    #[test]
    fn two_hashes_of_one_password_differ_by_salt() -> Result<(), PasswordError> {
        assert_ne!(hash_password("pw")?, hash_password("pw")?);
        Ok(())
    }

    #[test]
    fn a_stored_hash_other_than_argon2id_is_unusable() {
        // argon2i of "password" (salt "somesalt"), a valid PHC string of another variant.
        let argon2i =
            "$argon2i$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$wWKIMhR9lyDFvRz9YTZweHKfbftvj+qf+YFY4NeBbtA";
        assert!(matches!(
            verify_password("password", argon2i),
            PasswordCheck::UnusableHash(_)
        ));
        assert!(matches!(
            verify_password("password", "plain"),
            PasswordCheck::UnusableHash(_)
        ));
    }

    #[test]
    fn an_overlong_password_is_refused() {
        let long = "x".repeat(MAX_PASSWORD_BYTES + 1);
        assert!(hash_password(&long).is_err());
    }

    #[test]
    fn an_operator_password_needs_the_minimum_length() -> Result<(), PasswordError> {
        assert!(hash_new_password("short").is_err());
        let phc = hash_new_password("ten chars!")?;
        assert_eq!(verify_password("ten chars!", &phc), PasswordCheck::Match);
        Ok(())
    }
}
