//! AES-256-GCM seals under a guest's enrollment key (spec §6.4–§6.5). The AAD is the
//! message's domain-separation string followed by every cleartext header byte, so the
//! identities, request id and validity cannot be changed without breaking the seal.

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use alloc::vec::Vec;
use zeroize::Zeroize;

use super::{EnrollmentKey, SessionKey};
use crate::Reason;
use crate::frame::{GrantRequestHeader, GrantRequestView, GuestGrantHeader, GuestGrantView};

/// Domain separation of the GrantRequest AAD.
pub const DS_GRANT_REQUEST: &[u8] = b"latchkey/v1 grant-request\0";
/// Domain separation of the GuestGrant AAD.
pub const DS_GUEST_GRANT: &[u8] = b"latchkey/v1 guest-grant\0";

fn aad(ds: &[u8], header: &[u8]) -> Vec<u8> {
    let mut a = Vec::with_capacity(ds.len() + header.len());
    a.extend_from_slice(ds);
    a.extend_from_slice(header);
    a
}

fn cipher(k: &EnrollmentKey) -> Aes256Gcm {
    Aes256Gcm::new(&(*k.expose()).into())
}

fn seal<const N: usize, const M: usize>(
    k: &EnrollmentKey,
    nonce: &[u8; 12],
    aad: &[u8],
    plaintext: &[u8; N],
) -> [u8; M] {
    let mut out = [0u8; M];
    let (body, tag_out) = out.split_at_mut(N);
    body.copy_from_slice(plaintext);
    // GCM only fails for inputs beyond 2^36 bytes; ours are tens of bytes.
    match cipher(k).encrypt_inout_detached(&Nonce::from(*nonce), aad, body.into()) {
        Ok(tag) => tag_out.copy_from_slice(&tag),
        Err(_) => out.fill(0),
    }
    out
}

fn open<const N: usize>(
    k: &EnrollmentKey,
    nonce: &[u8; 12],
    aad: &[u8],
    sealed: &[u8],
) -> Result<[u8; N], Reason> {
    if sealed.len() != N + 16 {
        return Err(Reason::BadSeal);
    }
    let mut body = [0u8; N];
    body.copy_from_slice(&sealed[..N]);
    let mut tag = [0u8; 16];
    tag.copy_from_slice(&sealed[N..]);
    match cipher(k).decrypt_inout_detached(
        &Nonce::from(*nonce),
        aad,
        (&mut body[..]).into(),
        &Tag::from(tag),
    ) {
        Ok(()) => Ok(body),
        Err(_) => {
            body.zeroize();
            Err(Reason::BadSeal)
        }
    }
}

/// Seals a request's body (the requested validity in seconds).
pub fn seal_request(
    k: &EnrollmentKey,
    header: &GrantRequestHeader,
    requested_validity_s: u32,
    nonce: &[u8; 12],
) -> [u8; 20] {
    seal::<4, 20>(
        k,
        nonce,
        &aad(DS_GRANT_REQUEST, &header.to_bytes()),
        &requested_validity_s.to_be_bytes(),
    )
}

/// Opens a request's seal (**LK-ISS-3**) and returns the requested validity in seconds.
pub fn open_request(k: &EnrollmentKey, view: &GrantRequestView<'_>) -> Result<u32, Reason> {
    open::<4>(
        k,
        &view.nonce,
        &aad(DS_GRANT_REQUEST, view.header_bytes),
        view.sealed,
    )
    .map(u32::from_be_bytes)
}

/// Seals a session key to a guest.
pub fn seal_guest_grant(
    k: &EnrollmentKey,
    header: &GuestGrantHeader,
    k_s: &SessionKey,
    nonce: &[u8; 12],
) -> [u8; 48] {
    seal::<32, 48>(
        k,
        nonce,
        &aad(DS_GUEST_GRANT, &header.to_bytes()),
        k_s.expose(),
    )
}

/// Opens a guest grant's seal (**LK-GGR-3**) and returns the session key.
pub fn open_guest_grant(
    k: &EnrollmentKey,
    view: &GuestGrantView<'_>,
) -> Result<SessionKey, Reason> {
    let mut raw = open::<32>(
        k,
        &view.nonce,
        &aad(DS_GUEST_GRANT, view.header_bytes),
        view.sealed,
    )?;
    let key = SessionKey::from_bytes(raw);
    raw.zeroize();
    Ok(key)
}
