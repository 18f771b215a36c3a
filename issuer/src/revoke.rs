//! Revocation while no daemon runs (`revoke-grant`, `revoke-guest`, `rotate-guest-key
//! --revoke-grants` with no control socket): the Revocation is signed with the issuer key
//! by the core, exactly as the daemon would, and stored; the daemon publishes it when it
//! starts and re-publishes it until the lock confirms.
//!
//! These functions take the state directory's daemon lock for their whole run, so a daemon
//! cannot start (and load the grants) halfway through.

use std::path::Path;

use latchkey::{GrantId, GuestId, Issuer, IssuerConfig};

use crate::commands::ACTOR_CLI;
use crate::error::IssuerdError;
use crate::fsutil::FileLock;
use crate::keys;
use crate::rng::os_rng;
use crate::state::StatePaths;
use crate::status::RevokedGrant;
use crate::store::{KekSource, OpenMode, Store};
use crate::time;

/// What to revoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfflineRevocation {
    /// One live grant.
    Grant(GrantId),
    /// A guest's enrollment and its live grants.
    Guest(GuestId),
    /// A guest's live grants (its enrollment stays).
    GrantsOf(GuestId),
}

/// Carries out `what` with no daemon running. Refused (with [`IssuerdError::AlreadyRunning`])
/// if a daemon holds the state directory: ask it through the control socket instead.
pub fn revoke_offline(
    state_dir: &Path,
    kek: &KekSource,
    what: OfflineRevocation,
) -> Result<Vec<RevokedGrant>, IssuerdError> {
    let paths = StatePaths::new(state_dir);
    let Some(_lock) = FileLock::try_acquire(&paths.daemon_lock())? else {
        return Err(IssuerdError::AlreadyRunning {
            dir: paths.dir().to_owned(),
        });
    };
    let mut store = Store::open(&paths, kek, OpenMode::Existing)?;
    let now = time::now();
    let now_s = now.secs();
    let (guest, grants) = match what {
        OfflineRevocation::Grant(id) => {
            let live = store
                .grant(&id)?
                .filter(|g| g.is_live(now_s) && g.guest_id.is_some())
                .ok_or(IssuerdError::GrantNotLive(id))?;
            (None, vec![live.grant_id])
        }
        OfflineRevocation::Guest(g) | OfflineRevocation::GrantsOf(g) => {
            if store.guest(&g)?.is_none() {
                return Err(IssuerdError::UnknownGuest(g));
            }
            let live = store
                .grants_of_guest(&g, now_s)?
                .into_iter()
                .filter(|r| r.is_live(now_s))
                .map(|r| r.grant_id)
                .collect();
            (
                matches!(what, OfflineRevocation::Guest(_)).then_some(g),
                live,
            )
        }
    };

    // The core signs, as in the daemon: restore the grants, revoke them.
    let signing_key = keys::load_private_key(&paths.issuer_key(), "issuer private key")?;
    let mut issuer = Issuer::new(IssuerConfig::new(signing_key))
        .map_err(|e| IssuerdError::Config(e.to_string()))?;
    for g in store.live_grants(now_s)? {
        if grants.contains(&g.grant_id) {
            issuer.restore_live_grant(g);
        }
    }
    let mut rng = os_rng()?;
    let mut signed = Vec::with_capacity(grants.len());
    let mut revoked = Vec::with_capacity(grants.len());
    for id in grants {
        let rev = issuer
            .revoke_grant(now, id, &mut rng)
            .ok_or(IssuerdError::GrantNotLive(id))?;
        revoked.push(RevokedGrant {
            grant_id: id,
            lock_id: rev.lock_id,
        });
        signed.push((id, rev.payload));
    }
    store.record_offline_revocations(guest.as_ref(), &signed, now.0, ACTOR_CLI)?;
    revoked.sort_by_key(|r| r.grant_id);
    Ok(revoked)
}
