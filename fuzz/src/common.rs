//! Fixed keys and identities, forged session material, time deltas, frame mutations and
//! the seed encoder shared by the state-machine targets.

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use latchkey::crypto::rsa::{RsaPrivateKey, RsaPublicKey};
use latchkey::crypto::{self, MacContext, SessionKey, SessionKeys, ShortCmac, derive_session_keys};
use latchkey::frame::{Beacon, Challenge, NONCE_LEN, Response, Select};
use latchkey::{GuestId, LockId, SessionId, Step, UnixMillis};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// Lock A: the lock under test in `lock_sm`, known to the issuer.
pub const LOCK_A: LockId = LockId([0xA0; 16]);
/// Lock B: a second lock the issuer knows.
pub const LOCK_B: LockId = LockId([0xB0; 16]);
/// Lock C: a lock nobody knows.
pub const LOCK_C: LockId = LockId([0xC0; 16]);
/// The guest of `lock_sm` and `guest_sm`.
pub const GUEST: GuestId = GuestId([0x61; 16]);
/// 2027-01-15T08:00:10Z, 10 s into a step: every target starts its clock here.
pub const T0_MS: u64 = 1_800_000_010_000;
/// [`T0_MS`] in seconds.
pub const T0_S: u64 = T0_MS / 1000;
/// Most actions applied per input (longer inputs are cut), so one input stays fast.
pub const MAX_ACTIONS: usize = 128;

/// The fixed RSA keys of `vectors/keys/` (parsed once; never generated).
#[derive(Debug)]
pub struct Keys {
    /// Issuer signing key.
    pub issuer: RsaPrivateKey,
    /// Lock A's key.
    pub lock_a: RsaPrivateKey,
    /// Lock B's key.
    pub lock_b: RsaPrivateKey,
    /// A key nobody trusts.
    pub rogue: RsaPrivateKey,
}

impl Keys {
    /// Public half of the issuer key.
    pub fn issuer_pub(&self) -> RsaPublicKey {
        self.issuer.public_key()
    }
}

/// The keys, loaded at compile time from `vectors/keys/*.pk8.der`.
pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let load = |der: &[u8]| RsaPrivateKey::from_pkcs8_der(der).expect("fixed test key");
        Keys {
            issuer: load(include_bytes!("../../vectors/keys/issuer.pk8.der")),
            lock_a: load(include_bytes!("../../vectors/keys/lock-a.pk8.der")),
            lock_b: load(include_bytes!("../../vectors/keys/lock-b.pk8.der")),
            rogue: load(include_bytes!("../../vectors/keys/rogue.pk8.der")),
        }
    })
}

/// A deterministic CSPRNG for one input.
pub fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// Session material known to the fuzz driver: it plays the other side of the protocol.
#[derive(Debug, Clone)]
pub struct Material {
    /// The lock the session is bound to.
    pub lock_id: LockId,
    /// The session.
    pub session_id: SessionId,
    /// Subkeys derived from the session key (LK-KEY-1).
    pub keys: SessionKeys,
    cmac: ShortCmac,
}

impl Material {
    /// Derives the subkeys of `k_s` for `lock_id` and `session_id`.
    pub fn new(k_s: &SessionKey, lock_id: LockId, session_id: SessionId) -> Self {
        let keys = derive_session_keys(k_s, &lock_id, &session_id);
        let cmac = keys.beacon_cmac();
        Self {
            lock_id,
            session_id,
            keys,
            cmac,
        }
    }

    /// The rotating tag of `step`.
    pub fn tag(&self, step: Step) -> [u8; 8] {
        crypto::beacon_tag(&self.keys.tag, step)
    }

    /// The correct beacon for `step` and `attempt`.
    pub fn beacon(&self, step: Step, attempt: u16) -> [u8; 23] {
        let tag = self.tag(step);
        let mac = crypto::beacon_mac(&self.cmac, &Beacon::mac_input(step, &tag, attempt));
        Beacon {
            step,
            tag,
            attempt,
            mac,
        }
        .to_bytes()
    }

    /// The Select naming the beacon of `step` and `attempt`.
    pub fn select(&self, step: Step, attempt: u16) -> [u8; 11] {
        Select {
            tag: self.tag(step),
            attempt,
        }
        .to_bytes()
    }

    /// The MAC context of a challenge of this session.
    pub fn ctx(
        &self,
        nonce: [u8; NONCE_LEN],
        lock_time: u32,
        step: Step,
        attempt: u16,
    ) -> MacContext {
        MacContext {
            lock_id: self.lock_id,
            session_id: self.session_id,
            nonce,
            lock_time,
            step,
            attempt,
        }
    }

    /// The challenge the lock must send for this context.
    pub fn challenge(&self, c: &MacContext) -> [u8; 33] {
        Challenge {
            nonce: c.nonce,
            lock_time: c.lock_time,
            session_id: self.session_id,
            lock_mac: crypto::lock_mac(&self.keys.chal, c),
        }
        .to_bytes()
    }

    /// The correct response to the challenge with context `c`.
    pub fn response(&self, c: &MacContext, phone_time: u32) -> [u8; 20] {
        Response {
            phone_time,
            step: c.step,
            mac: crypto::response_mac(&self.keys.resp, c, phone_time),
        }
        .to_bytes()
    }
}

/// `now` as the core sees it.
pub fn ms(t: u64) -> UnixMillis {
    UnixMillis(t)
}

/// A change of the driver's clock. It may go backwards: the roles must clamp (LK-TIM-1).
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delta {
    /// Forward by this many milliseconds.
    Ms(u16),
    /// Backward by this many milliseconds.
    BackMs(u16),
    /// Forward by `n % 8` steps of 30 s.
    Steps(u8),
    /// Backward by `n % 8` steps.
    BackSteps(u8),
    /// Forward by `n` minutes.
    Minutes(u8),
    /// Backward by `n` hours.
    BackHours(u8),
    /// To an extreme instant (0, the end of u32 seconds, the end of u32 steps, u64::MAX, T0).
    Extreme(u8),
}

impl Delta {
    /// Number of variants (for the seed encoder).
    pub const COUNT: u32 = 7;

    /// The new clock value.
    pub fn apply(self, now: u64) -> u64 {
        match self {
            Delta::Ms(d) => now.saturating_add(u64::from(d)),
            Delta::BackMs(d) => now.saturating_sub(u64::from(d)),
            Delta::Steps(n) => now.saturating_add(u64::from(n % 8) * 30_000),
            Delta::BackSteps(n) => now.saturating_sub(u64::from(n % 8) * 30_000),
            Delta::Minutes(n) => now.saturating_add(u64::from(n) * 60_000),
            Delta::BackHours(n) => now.saturating_sub(u64::from(n) * 3_600_000),
            Delta::Extreme(n) => match n % 6 {
                0 => 0,
                1 => u64::from(u32::MAX) * 1000,
                2 => u64::from(u32::MAX) * 30_000,
                3 => u64::MAX,
                4 => u64::from(u32::MAX) * 30_000 + 29_999,
                _ => T0_MS,
            },
        }
    }

    /// Encodes for a seed.
    pub fn seed(&self, e: &mut Enc) {
        match *self {
            Delta::Ms(d) => {
                e.tag(0, Self::COUNT);
                e.u16(d)
            }
            Delta::BackMs(d) => {
                e.tag(1, Self::COUNT);
                e.u16(d)
            }
            Delta::Steps(n) => {
                e.tag(2, Self::COUNT);
                e.u8(n)
            }
            Delta::BackSteps(n) => {
                e.tag(3, Self::COUNT);
                e.u8(n)
            }
            Delta::Minutes(n) => {
                e.tag(4, Self::COUNT);
                e.u8(n)
            }
            Delta::BackHours(n) => {
                e.tag(5, Self::COUNT);
                e.u8(n)
            }
            Delta::Extreme(n) => {
                e.tag(6, Self::COUNT);
                e.u8(n)
            }
        }
    }
}

/// A change to a well-formed frame before it is delivered.
#[derive(Arbitrary, Debug, Clone, PartialEq, Eq)]
pub enum Mutation {
    /// Delivered as built.
    None,
    /// One bit flipped (index modulo the bit length).
    FlipBit(u16),
    /// One byte set (index modulo the length).
    SetByte(u16, u8),
    /// Cut to `n % len` bytes.
    Truncate(u16),
    /// `1 + n % 8` copies of a byte appended.
    Extend(u8, u8),
    /// Replaced by arbitrary bytes.
    Replace(Vec<u8>),
}

impl Mutation {
    /// Number of variants (for the seed encoder).
    pub const COUNT: u32 = 6;

    /// Applies the mutation.
    pub fn apply(&self, frame: &[u8]) -> Vec<u8> {
        let mut v = frame.to_vec();
        match self {
            Mutation::None => {}
            Mutation::FlipBit(i) if !v.is_empty() => {
                let bit = usize::from(*i) % (v.len() * 8);
                v[bit / 8] ^= 1 << (bit % 8);
            }
            Mutation::SetByte(i, b) if !v.is_empty() => {
                let n = v.len();
                v[usize::from(*i) % n] = *b;
            }
            Mutation::Truncate(n) if !v.is_empty() => v.truncate(usize::from(*n) % v.len()),
            Mutation::Extend(n, b) => v.extend(std::iter::repeat_n(*b, 1 + usize::from(*n % 8))),
            Mutation::Replace(b) => v = b.clone(),
            _ => {}
        }
        v
    }

    /// Encodes for a seed (only [`Mutation::None`] and [`Mutation::FlipBit`] are needed).
    pub fn seed(&self, e: &mut Enc) {
        match self {
            Mutation::None => e.tag(0, Self::COUNT),
            Mutation::FlipBit(i) => {
                e.tag(1, Self::COUNT);
                e.u16(*i)
            }
            other => unimplemented!("seed encoding of {other:?}"),
        }
    }
}

/// Writes values in the byte format `arbitrary` reads them back from (little-endian
/// integers, a `u32` scaled to the variant count before each enum's fields). The seed
/// generator checks every encoded seed decodes to what it encoded.
#[derive(Debug, Default)]
pub struct Enc(pub Vec<u8>);

impl Enc {
    /// An enum discriminant: variant `idx` of `count`.
    pub fn tag(&mut self, idx: u32, count: u32) {
        assert!(idx < count);
        let t = (u64::from(idx) << 32).div_ceil(u64::from(count));
        self.u32(u32::try_from(t).expect("discriminant fits"));
    }
    /// A `u8`.
    pub fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    /// A `bool`.
    pub fn bool(&mut self, v: bool) {
        self.0.push(u8::from(v));
    }
    /// A `u16`.
    pub fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// An `i16`.
    pub fn i16(&mut self, v: i16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// A `u32`.
    pub fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// An `i32`.
    pub fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// A `u64`.
    pub fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
}

/// Hex dump for assertion messages.
pub fn hex(b: &[u8]) -> String {
    ::hex::encode(b)
}
