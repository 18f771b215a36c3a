//! What a guest is at one lock, and what that allows.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Longest grant a [`Role::Guest`] gets, in seconds: a visitor's session key is worth
/// little for long, and a revoked visitor's last grant runs out soon. Longer than the
/// guest app's default request (600 s), so it rarely shortens a grant in practice.
pub const GUEST_GRANT_CAP_S: u64 = 900;

/// The role of a guest at a lock (the `access.role` column; `--role` on the CLI).
///
/// | role | `valid_until` | schedule | unlock limit | per-grant cap |
/// |---|---|---|---|---|
/// | `admin` | optional | not allowed | not allowed | the issuer's `max_grant_validity_s` |
/// | `resident` | optional | optional | optional | the issuer's `max_grant_validity_s` |
/// | `guest` | required | optional | optional | [`GUEST_GRANT_CAP_S`] |
///
/// An admin (owner, caretaker) is never refused by time of day or by count, only by its
/// validity window; a resident lives there and may be restricted; a guest is a visitor
/// whose access must end. The constraints are checked when the [`AccessRule`] is built.
///
/// [`AccessRule`]: super::AccessRule
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Unrestricted access (within its validity window).
    Admin,
    /// Long-term access; may be limited by a schedule or a number of unlocks.
    Resident,
    /// Temporary access: must have an end; short grants.
    Guest,
}

impl Role {
    /// Every role, in the order of the table above (for forms and help texts).
    pub const ALL: [Role; 3] = [Role::Admin, Role::Resident, Role::Guest];

    /// The name used in the database, JSON, the CLI and the web forms.
    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Resident => "resident",
            Role::Guest => "guest",
        }
    }

    /// The longest grant this role gets, in seconds; `None`: only the issuer's
    /// `max_grant_validity_s` applies.
    pub fn grant_cap_s(self) -> Option<u64> {
        match self {
            Role::Guest => Some(GUEST_GRANT_CAP_S),
            Role::Admin | Role::Resident => None,
        }
    }

    /// Whether an access rule of this role must have a `valid_until`.
    pub fn requires_end(self) -> bool {
        self == Role::Guest
    }

    /// Whether an access rule of this role may carry a schedule and an unlock limit.
    pub fn may_be_restricted(self) -> bool {
        self != Role::Admin
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A role name that is none of `admin`, `resident`, `guest`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: use admin, resident or guest")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    /// Parses a role name, ignoring ASCII case and surrounding spaces.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim();
        Role::ALL
            .into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| UnknownRole(s.chars().take(32).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_are_the_database_and_json_names() {
        for role in Role::ALL {
            assert_eq!(role.to_string(), role.name());
            assert_eq!(role.name().parse::<Role>(), Ok(role));
            let json = serde_json::to_string(&role).unwrap();
            assert_eq!(json, format!("\"{}\"", role.name()));
            assert_eq!(serde_json::from_str::<Role>(&json).unwrap(), role);
        }
        assert_eq!(" Guest ".parse::<Role>(), Ok(Role::Guest));
    }

    #[test]
    fn unknown_role_names_are_refused_with_the_choices() {
        let err = "owner".parse::<Role>().unwrap_err();
        assert_eq!(err, UnknownRole("owner".into()));
        assert!(err.to_string().contains("admin, resident or guest"));
        assert!(serde_json::from_str::<Role>("\"Admin\"").is_err());
    }

    #[test]
    fn only_guests_have_a_grant_cap_and_need_an_end() {
        assert_eq!(Role::Guest.grant_cap_s(), Some(GUEST_GRANT_CAP_S));
        assert_eq!(Role::Resident.grant_cap_s(), None);
        assert_eq!(Role::Admin.grant_cap_s(), None);
        assert!(Role::Guest.requires_end());
        assert!(!Role::Resident.requires_end() && !Role::Admin.requires_end());
        assert!(!Role::Admin.may_be_restricted());
        assert!(Role::Resident.may_be_restricted() && Role::Guest.may_be_restricted());
    }
}
