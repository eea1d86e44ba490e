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

/// The one `&'static str` for a value read back from a partial result (rule
/// ids, reject codes, phases): a handful of distinct values per run, each
/// leaked once.
pub fn intern(s: &str) -> &'static str {
    static SEEN: std::sync::Mutex<Option<FastSet<&'static str>>> = std::sync::Mutex::new(None);
    let mut g = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    let set = g.get_or_insert_with(FastSet::default);
    if let Some(&v) = set.get(s) {
        return v;
    }
    let v: &'static str = Box::leak(s.to_string().into_boxed_str());
    set.insert(v);
    v
}

/// A `&'static str` field that serde reads through `static_str` (an alias,
/// so serde's derive does not take it for a borrowed `&str`).
pub type StaticStr = &'static str;

/// Serde for `&'static str` fields of results that cross processes (Spark
/// partitions): interned on the way back in.
pub mod static_str {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &&'static str, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
        Ok(super::intern(&String::deserialize(d)?))
    }
}

/// Keeps glibc malloc from returning and re-faulting the buffers it is
/// handed in a churn. Parquet decoding allocates a buffer per page (about
/// a megabyte each); past glibc's dynamic thresholds each came from a fresh
/// `mmap` or a re-grown heap top, so every page was faulted in and zeroed
/// again: a quarter of a 5M-line Parquet audit's CPU time. Fixed thresholds
/// (16 MiB before `mmap`, 32 MiB kept at the heap top) cut its page faults
/// from 233k to 81k. In the binary, which allocates with mimalloc, this
/// tunes only what C libraries allocate (zstd's contexts and windows), and
/// still pays: the 5M CSV audit 0.91 -> 0.78 s with it (7 alternating
/// runs). A no-op on other C libraries. Called once, first thing.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 16 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 32 << 20);
    }
}

/// Returns memory the allocator holds free (in every arena, whole pages
/// inside the heaps too) to the system. The fixed trim threshold above keeps
/// up to 32 MiB free per arena between the reads that churn through it; at a
/// phase boundary (reading done, evaluation done) that memory is of no more
/// use, and left resident it would add to the next phase's peak.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The process's peak resident memory so far, in MiB (Linux; 0 elsewhere),
/// for the phase timings logged at debug level.
pub fn peak_rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib =
        status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
    kib.unwrap_or(0) / 1024
}
