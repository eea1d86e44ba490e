//! `Text`: an immutable string stored inline when short. Claim lines carry a
//! dozen short identifiers and codes (ids, HCPCS, ICD-10, NPI, NDC); keeping
//! them inline removes most heap allocations per line on the hot path.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

const INLINE: usize = 22;

#[derive(Clone)]
enum Repr {
    Inline { len: u8, buf: [u8; INLINE] },
    Heap(Box<str>),
}

/// An immutable UTF-8 string, inline up to 22 bytes (24 bytes in all, like `String`).
#[derive(Clone)]
pub struct Text(Repr);

impl Text {
    pub fn new(s: &str) -> Text {
        if s.len() <= INLINE {
            let mut buf = [0u8; INLINE];
            buf[..s.len()].copy_from_slice(s.as_bytes());
            Text(Repr::Inline { len: s.len() as u8, buf })
        } else {
            Text(Repr::Heap(s.into()))
        }
    }

    /// ASCII upper-case copy, without a temporary `String` when it fits inline.
    pub fn upper(s: &str) -> Text {
        if s.len() <= INLINE {
            let mut buf = [0u8; INLINE];
            buf[..s.len()].copy_from_slice(s.as_bytes());
            buf[..s.len()].make_ascii_uppercase();
            Text(Repr::Inline { len: s.len() as u8, buf })
        } else {
            Text(Repr::Heap(s.to_ascii_uppercase().into()))
        }
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            // SAFETY: only `new` and `upper` build `Inline`, from whole `str`s,
            // and ASCII case changes keep UTF-8 valid. This runs in every sort
            // comparison, so it skips re-validation.
            Repr::Inline { len, buf } => unsafe { std::str::from_utf8_unchecked(&buf[..*len as usize]) },
            Repr::Heap(s) => s,
        }
    }
}

impl Default for Text {
    fn default() -> Text {
        Text::new("")
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

impl PartialEq for Text {
    fn eq(&self, o: &Text) -> bool {
        self.as_str() == o.as_str()
    }
}
impl Eq for Text {}

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

impl PartialOrd for Text {
    fn partial_cmp(&self, o: &Text) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Text {
    fn cmp(&self, o: &Text) -> std::cmp::Ordering {
        self.as_str().cmp(o.as_str())
    }
}

// Same hash as `str`, so maps keyed by `Text` can be queried with `&str`.
impl Hash for Text {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.as_str().hash(h)
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
