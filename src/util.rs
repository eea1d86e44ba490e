//! Small shared helpers: a stable hash for ids and fast maps for policy tables.

/// FNV-1a, 64 bit: a stable hash (std's is not stable across releases) for
/// the deterministic run id.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// FNV-1a, 128 bit: the stable finding id (64 bits would collide too soon
/// across years of nightly findings).
pub fn fnv1a_128(bytes: &[u8]) -> u128 {
    let mut h: u128 = 0x6c62272e07bb014262b821756295c58d;
    for &b in bytes {
        h ^= b as u128;
        h = h.wrapping_mul(0x0000000001000000000000000000013B);
    }
    h
}

/// Maps and sets with the Fx hash of rustc for the policy's small
/// string-keyed tables, looked up several times per claim line. The keys come
/// from the policy file, not from input, so DoS resistance is moot.
pub type FastMap<K, V> = rustc_hash::FxHashMap<K, V>;
pub type FastSet<K> = rustc_hash::FxHashSet<K>;
