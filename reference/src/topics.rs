//! MQTT topic names (spec §6.1). The prefix is deployment configuration.

use alloc::format;
use alloc::string::String;

use crate::{GuestId, LockId};

/// Default topic prefix.
pub const DEFAULT_PREFIX: &str = "latchkey/v1";

/// `{prefix}/requests/{guest_id}`: GrantRequest, published by the guest.
pub fn requests(prefix: &str, guest: &GuestId) -> String {
    format!("{prefix}/requests/{guest}")
}

/// `{prefix}/requests/+`: the issuer's subscription.
pub fn requests_filter(prefix: &str) -> String {
    format!("{prefix}/requests/+")
}

/// `{prefix}/guests/{guest_id}/grants`: GuestGrant, published by the issuer.
pub fn guest_grants(prefix: &str, guest: &GuestId) -> String {
    format!("{prefix}/guests/{guest}/grants")
}

/// `{prefix}/locks/{lock_id}/grants`: LockGrant and Revocation, published by the issuer.
pub fn lock_grants(prefix: &str, lock: &LockId) -> String {
    format!("{prefix}/locks/{lock}/grants")
}

/// `{prefix}/locks/{lock_id}/events`: LockEvent, published by the lock.
pub fn lock_events(prefix: &str, lock: &LockId) -> String {
    format!("{prefix}/locks/{lock}/events")
}

/// `{prefix}/locks/+/events`: the issuer's subscription.
pub fn lock_events_filter(prefix: &str) -> String {
    format!("{prefix}/locks/+/events")
}

/// The guest id in a `{prefix}/requests/{guest_id}` topic.
pub fn guest_of_request_topic(prefix: &str, topic: &str) -> Option<GuestId> {
    topic
        .strip_prefix(prefix)?
        .strip_prefix("/requests/")?
        .parse()
        .ok()
}

/// The lock id in a `{prefix}/locks/{lock_id}/events` topic.
pub fn lock_of_events_topic(prefix: &str, topic: &str) -> Option<LockId> {
    topic
        .strip_prefix(prefix)?
        .strip_prefix("/locks/")?
        .strip_suffix("/events")?
        .parse()
        .ok()
}
