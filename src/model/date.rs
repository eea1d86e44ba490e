//! Dates as days since 1970-01-01 (the Parquet DATE representation), with the
//! three text forms extracts use. Hand-rolled because it sits on the hot path.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Date(pub i32);

/// The years a date may have (anything else in an extract is a typo).
const FIRST_YEAR: i32 = 1800;
const LAST_YEAR: i32 = 2999;

impl Date {
    pub fn from_ymd(y: i32, m: u32, d: u32) -> Option<Date> {
        if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) || !(FIRST_YEAR..=LAST_YEAR).contains(&y) {
            return None;
        }
        Some(Date(days_from_civil(y, m, d)))
    }

    /// Whether `parse` of this date's text gives this date back (years
    /// 1800-2999, as `from_ymd` accepts). A typed date outside is read as
    /// its text, so it is rejected as that text would be.
    pub fn parses_back(self) -> bool {
        const FIRST: i32 = days_from_civil(FIRST_YEAR, 1, 1);
        const LAST: i32 = days_from_civil(LAST_YEAR, 12, 31);
        (FIRST..=LAST).contains(&self.0)
    }

    pub fn ymd(self) -> (i32, u32, u32) {
        civil_from_days(self.0)
    }

    /// `YYYY-MM-DD` as bytes, for years 0 to 9999; None outside. What
    /// `Display` writes, and how date columns become text, without a
    /// formatter per value.
    pub fn iso_bytes(self) -> Option<[u8; 10]> {
        let (y, m, d) = self.ymd();
        if !(0..=9999).contains(&y) {
            return None;
        }
        let (y, m, d) = (y as u32, m, d);
        let digit = |v: u32| b'0' + (v % 10) as u8;
        Some([digit(y / 1000), digit(y / 100), digit(y / 10), digit(y), b'-', digit(m / 10), digit(m), b'-', digit(d / 10), digit(d)])
    }

    pub fn add_days(self, n: i32) -> Date {
        Date(self.0 + n)
    }

    pub fn days_since(self, earlier: Date) -> i32 {
        self.0 - earlier.0
    }

    /// Parses `YYYY-MM-DD`, `YYYYMMDD`, `MM/DD/YYYY` (one-digit month and day
    /// allowed), and a timestamp whose first ten characters are `YYYY-MM-DD`.
    pub fn parse(s: &str) -> Option<Date> {
        let s = super::codes::trim(s);
        let b = s.as_bytes();
        match b.len() {
            8 if b.iter().all(u8::is_ascii_digit) => Date::from_ymd(num(&b[0..4])? as i32, num(&b[4..6])?, num(&b[6..8])?),
            10 if b[4] == b'-' && b[7] == b'-' => Date::from_ymd(num(&b[0..4])? as i32, num(&b[5..7])?, num(&b[8..10])?),
            n if n > 10 && b[4] == b'-' && b[7] == b'-' && (b[10] == b' ' || b[10] == b'T') => {
                Date::from_ymd(num(&b[0..4])? as i32, num(&b[5..7])?, num(&b[8..10])?)
            }
            _ => {
                let mut it = s.split('/');
                let (m, d, y) = (it.next()?, it.next()?, it.next()?);
                if it.next().is_some() || y.len() != 4 || m.is_empty() || m.len() > 2 || d.is_empty() || d.len() > 2 {
                    return None;
                }
                Date::from_ymd(num(y.as_bytes())? as i32, num(m.as_bytes())?, num(d.as_bytes())?)
            }
        }
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Ids and evidence format a date per finding, episode and timeline
        // row: the byte form, not the formatting machinery, when it fits.
        match self.iso_bytes() {
            Some(b) => f.write_str(std::str::from_utf8(&b).map_err(|_| fmt::Error)?),
            None => {
                let (y, m, d) = self.ymd();
                write!(f, "{y:04}-{m:02}-{d:02}")
            }
        }
    }
}

impl serde::Serialize for Date {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Date {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Date::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("invalid date {s:?}, expected YYYY-MM-DD")))
    }
}

fn num(b: &[u8]) -> Option<u32> {
    if b.is_empty() {
        return None;
    }
    b.iter().try_fold(0u32, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + (c - b'0') as u32))
}

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

// Howard Hinnant's days_from_civil / civil_from_days.
const fn days_from_civil(y: i32, m: u32, d: u32) -> i32 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = (y - era * 400) as u32;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe as i32 - 719468
}

fn civil_from_days(z: i32) -> (i32, u32, u32) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = (z - era * 146097) as u32;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe as i32 + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_back_exactly_where_parse_accepts() {
        for days in [-719528, -62092, -62091, -1, 0, 20362, 376199, 376200, 2932896] {
            let d = Date(days);
            let back = d.iso_bytes().and_then(|b| Date::parse(std::str::from_utf8(&b).unwrap()));
            assert_eq!(d.parses_back(), back == Some(d), "{days}");
        }
    }

    #[test]
    fn iso_bytes_match_display() {
        for days in [-719528, -1, 0, 1, 11016, 20362, 2932896] {
            let d = Date(days);
            let (y, m, dd) = d.ymd();
            assert_eq!(d.iso_bytes().map(|b| String::from_utf8(b.to_vec()).unwrap()), Some(format!("{y:04}-{m:02}-{dd:02}")), "{days}");
            assert_eq!(d.to_string(), format!("{y:04}-{m:02}-{dd:02}"));
        }
        assert_eq!(Date(-719529).iso_bytes(), None);
        assert_eq!(Date(2932897).iso_bytes(), None);
        assert_eq!(Date(2932897).to_string(), "10000-01-01");
    }

    #[test]
    fn three_formats_agree() {
        let d = Date::parse("2025-10-01").unwrap();
        assert_eq!(Date::parse("20251001"), Some(d));
        assert_eq!(Date::parse("10/01/2025"), Some(d));
        assert_eq!(Date::parse("10/1/2025"), Some(d));
        assert_eq!(Date::parse("2025-10-01 00:00:00"), Some(d));
        assert_eq!(d.to_string(), "2025-10-01");
        assert_eq!(Date::from_ymd(1970, 1, 1), Some(Date(0)));
    }

    #[test]
    fn rejects_impossible_dates() {
        for s in ["2025-13-45", "2025-02-29", "", "2025/10/01", "1/1/25", "abcdefgh"] {
            assert_eq!(Date::parse(s), None, "{s}");
        }
        assert!(Date::parse("2024-02-29").is_some());
    }

    #[test]
    fn round_trips() {
        for z in -1000..100_000 {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }
}
