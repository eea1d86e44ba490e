//! `Text`: an immutable string stored inline when short (`compact_str`).
//! Claim lines carry a dozen short identifiers and codes (ids, HCPCS,
//! ICD-10, NPI, NDC); keeping them inline removes most heap allocations per
//! line on the hot path. `Codes`: a short list of such codes in one `Text`.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

use compact_str::CompactString;

/// An immutable UTF-8 string, inline up to 24 bytes (24 bytes in all, like
/// `String`), over `compact_str`.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Text(CompactString);

impl Text {
    pub fn new(s: &str) -> Text {
        Text(CompactString::new(s))
    }

    /// ASCII upper-case copy, without a temporary `String` when it fits inline.
    pub fn upper(s: &str) -> Text {
        let mut c = CompactString::new(s);
        c.make_ascii_uppercase();
        Text(c)
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Text {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text::new(s)
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        Text::new(&s)
    }
}

impl From<&String> for Text {
    fn from(s: &String) -> Text {
        Text::new(s)
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, o: &str) -> bool {
        self.as_str() == o
    }
}
impl PartialEq<&str> for Text {
    fn eq(&self, o: &&str) -> bool {
        self.as_str() == *o
    }
}
impl PartialEq<String> for Text {
    fn eq(&self, o: &String) -> bool {
        self.as_str() == o.as_str()
    }
}
impl PartialEq<Text> for str {
    fn eq(&self, o: &Text) -> bool {
        self == o.as_str()
    }
}
impl PartialEq<Text> for &str {
    fn eq(&self, o: &Text) -> bool {
        *self == o.as_str()
    }
}
impl PartialEq<Text> for String {
    fn eq(&self, o: &Text) -> bool {
        self.as_str() == o.as_str()
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Text {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Text::new(&String::deserialize(d)?))
    }
}

/// A text's first 16 bytes (big-endian, zero-padded) and its length: a sort
/// key that settles most comparisons of ids and codes without reading the
/// text again (`prefix_cmp`).
pub type PrefixKey = (u128, usize);

pub fn prefix_key(s: &str) -> PrefixKey {
    let mut b = [0u8; 16];
    let n = s.len().min(16);
    b[..n].copy_from_slice(&s.as_bytes()[..n]);
    (u128::from_be_bytes(b), s.len())
}

/// The text order of `a` and `b`, from their keys where these settle it:
/// texts of up to 16 bytes order as (padded prefix, length).
pub fn prefix_cmp(ka: PrefixKey, kb: PrefixKey, a: &str, b: &str) -> std::cmp::Ordering {
    ka.0.cmp(&kb.0).then_with(|| if ka.1 <= 16 && kb.1 <= 16 { ka.1.cmp(&kb.1) } else { a.cmp(b) })
}

/// A short list of codes without spaces (normalized ICD-10-CM codes), kept
/// as one space-separated `Text`: no allocation for the usual few codes.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Codes(Text);

impl Codes {
    /// From codes in order, dropping empty ones and repeats. Codes must hold
    /// no space (the separator); callers strip whitespace first.
    pub fn from_codes<T: AsRef<str>>(codes: impl IntoIterator<Item = T>) -> Codes {
        let mut buf = [0u8; 64];
        let mut n = 0;
        let mut long: Option<String> = None;
        for c in codes {
            let c = c.as_ref();
            debug_assert!(!c.contains(' '));
            if c.is_empty() || buf[..n].split(|&b| b == b' ').any(|x| x == c.as_bytes()) {
                continue;
            }
            if let Some(l) = long.as_mut() {
                if !Codes::has(l, c) {
                    l.push(' ');
                    l.push_str(c);
                }
                continue;
            }
            let sep = usize::from(n > 0);
            if n + sep + c.len() > buf.len() {
                let mut l = std::str::from_utf8(&buf[..n]).unwrap_or_default().to_string();
                if n > 0 {
                    l.push(' ');
                }
                l.push_str(c);
                long = Some(l);
                continue;
            }
            if sep == 1 {
                buf[n] = b' ';
            }
            buf[n + sep..n + sep + c.len()].copy_from_slice(c.as_bytes());
            n += sep + c.len();
        }
        match long {
            Some(l) => Codes(Text::new(&l)),
            // Whole `str`s and spaces.
            None => Codes(Text::new(std::str::from_utf8(&buf[..n]).unwrap_or_default())),
        }
    }

    fn has(list: &str, c: &str) -> bool {
        list.split(' ').any(|x| x == c)
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.split(' ').filter(|s| !s.is_empty())
    }

    pub fn contains(&self, c: &str) -> bool {
        !c.is_empty() && Codes::has(&self.0, c)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// The codes as stored: space-separated (spill files write this).
    pub fn joined(&self) -> &str {
        &self.0
    }

    /// Codes from `joined` text, as written by this type (no re-checking).
    pub fn from_joined(s: &str) -> Codes {
        Codes(Text::new(s))
    }
}

impl fmt::Debug for Codes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl serde::Serialize for Codes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::hash::{Hash, Hasher};

    #[test]
    fn inline_and_heap_agree_with_str() {
        assert_eq!(std::mem::size_of::<Text>(), 24);
        assert_eq!(std::mem::size_of::<Option<Text>>(), 24);
        for s in ["", "J2350", "a-22-byte-long-string!", "a string longer than twenty-two bytes", "é✓ unicode"] {
            let t = Text::new(s);
            assert_eq!(t.as_str(), s);
            assert_eq!(Text::upper(s).as_str(), s.to_ascii_uppercase());
            let mut a = std::collections::hash_map::DefaultHasher::new();
            let mut b = std::collections::hash_map::DefaultHasher::new();
            t.hash(&mut a);
            s.hash(&mut b);
            assert_eq!(a.finish(), b.finish());
        }
        assert!(Text::new("A") < Text::new("B") && Text::new("AB") > Text::new("A"));
    }

    #[test]
    fn codes_keep_order_drop_repeats_and_empties() {
        let c = Codes::from_codes(["G35A", "", "R519", "G35A", "Z79899"]);
        assert_eq!(c.iter().collect::<Vec<_>>(), ["G35A", "R519", "Z79899"]);
        assert!(c.contains("R519") && !c.contains("R51") && !c.contains(""));
        assert_eq!(c.len(), 3);
        let many: Vec<String> = (0..30).map(|i| format!("Z{i:05}")).collect();
        let c = Codes::from_codes(many.iter().map(String::as_str).chain(["Z00001"]));
        assert_eq!(c.iter().collect::<Vec<_>>(), many);
        assert!(Codes::from_codes::<&str>([]).is_empty());
    }
}
