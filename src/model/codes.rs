//! Code normalization: every code is compared in one form, whatever form the
//! extract wrote it in. HCPCS trimmed and upper-cased; ICD-10-CM upper-cased
//! without the dot; NDC as 11 digits; place of service as two digits; type
//! of bill as three digits; revenue codes as four digits.

use super::text::Text;

/// `str::trim`, with a shortcut for the usual value that starts and ends
/// with a printable ASCII byte (then nothing is trimmed). Every field of a
/// kept row is trimmed, and `trim` walks characters.
pub fn trim(s: &str) -> &str {
    match s.as_bytes() {
        [f, .., l] if f.is_ascii_graphic() && l.is_ascii_graphic() => s,
        [b] if b.is_ascii_graphic() => s,
        _ => s.trim(),
    }
}

pub fn normalize_hcpcs(s: &str) -> String {
    s.trim().to_ascii_uppercase()
}

pub fn normalize_dx(s: &str) -> String {
    dx_text(s).to_string()
}

/// `normalize_dx` into a `Text`, without a temporary string for short codes.
pub fn dx_text(s: &str) -> Text {
    let t = trim(s);
    let mut buf = [0u8; 22];
    let mut n = 0;
    for &b in t.as_bytes() {
        if b == b'.' || b.is_ascii_whitespace() {
            continue;
        }
        if b >= 0x80 || n == buf.len() {
            // Non-ASCII (Unicode whitespace) or long: the general path.
            let v: String = t.chars().filter(|&c| c != '.' && !c.is_whitespace()).map(|c| c.to_ascii_uppercase()).collect();
            return Text::new(&v);
        }
        buf[n] = b.to_ascii_uppercase();
        n += 1;
    }
    // ASCII bytes only were copied.
    Text::new(std::str::from_utf8(&buf[..n]).unwrap_or_default())
}

/// ICD-10-CM display form: `G35A` -> `G35.A`.
pub fn display_dx(s: &str) -> String {
    if s.len() > 3 && s.is_char_boundary(3) { format!("{}.{}", &s[..3], &s[3..]) } else { s.to_string() }
}

/// Units or a quantity for messages: no trailing `.0` when whole.
pub fn display_units(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 { format!("{}", v as i64) } else { format!("{v}") }
}

/// An 11-digit NDC as 5-4-2 with dashes, the one way messages and evidence
/// spell NDCs; anything else as it is.
pub fn dashed_ndc(n: &str) -> String {
    if n.len() == 11 && n.bytes().all(|b| b.is_ascii_digit()) { format!("{}-{}-{}", &n[..5], &n[5..9], &n[9..]) } else { n.to_string() }
}

/// NDC to 11 digits (5-4-2). Dashed 10-digit forms 4-4-2, 5-3-2 and 5-4-1 are
/// padded; an undashed 10-digit NDC is ambiguous and is returned as None.
pub fn normalize_ndc(s: &str) -> Option<Text> {
    normalize_ndc_bytes(s.as_bytes()).and_then(|b| std::str::from_utf8(&b).ok().map(Text::new))
}

/// `normalize_ndc` on raw bytes, for the per-row scope test of pharmacy
/// extracts: no allocation, no UTF-8 check.
pub fn normalize_ndc_bytes(s: &[u8]) -> Option<[u8; 11]> {
    let s = s.trim_ascii();
    if !s.iter().all(|b| b.is_ascii_digit() || *b == b'-') {
        return None;
    }
    let mut parts = s.split(|&b| b == b'-');
    let (a, b, c) = (parts.next().unwrap_or(b""), parts.next(), parts.next());
    if parts.next().is_some() {
        return None;
    }
    let (a, b, c) = match (b, c) {
        (None, None) if a.len() == 11 => return a.try_into().ok(),
        (Some(b), Some(c)) => (a, b, c),
        _ => return None,
    };
    // Zero-pad the short segment of a 10-digit form.
    let pad = match (a.len(), b.len(), c.len()) {
        (5, 4, 2) => [0, 0, 0],
        (4, 4, 2) => [1, 0, 0],
        (5, 3, 2) => [0, 1, 0],
        (5, 4, 1) => [0, 0, 1],
        _ => return None,
    };
    let mut out = [b'0'; 11];
    let mut n = 0;
    for (seg, p) in [a, b, c].into_iter().zip(pad) {
        n += p;
        out[n..n + seg.len()].copy_from_slice(seg);
        n += seg.len();
    }
    Some(out)
}

/// Place of service to its two-digit form: `12`, ` 12`, `12.0` -> `12`.
pub fn normalize_pos(s: &str) -> Text {
    fixed_digits(s, 2).unwrap_or_else(|| Text::new(trim(s)))
}

/// Type of bill to three digits without the leading zero: `0341`, `341`,
/// `341.0` -> `341`. None when it is no bill type (too short, not digits).
pub fn normalize_bill_type(s: &str) -> Option<Text> {
    let t = integral_digits(s)?;
    let t = if t.len() == 4 { t.strip_prefix('0')? } else { &t };
    (t.len() == 3).then(|| Text::new(t))
}

/// Revenue code to four digits: `636`, `0636`, `636.0` -> `0636`.
pub fn normalize_revenue(s: &str) -> Option<Text> {
    fixed_digits(s, 4)
}

/// Digits of a whole number, zero-padded (or stripped of leading zeros) to
/// `width` (at most 8); None when the number has more than `width`
/// significant digits. Runs for every kept line: no temporary string.
fn fixed_digits(s: &str, width: usize) -> Option<Text> {
    let d = integral_digits(s)?;
    let d = d.trim_start_matches('0').as_bytes();
    if d.len() > width || width > 8 {
        return None;
    }
    let mut buf = [b'0'; 8];
    buf[width - d.len()..width].copy_from_slice(d);
    // ASCII digits only.
    std::str::from_utf8(&buf[..width]).ok().map(Text::new)
}

/// The digits of a non-negative whole number written as `341`, ` 0341 ` or
/// `341.0` (spreadsheet damage). Leading zeros are kept.
fn integral_digits(s: &str) -> Option<std::borrow::Cow<'_, str>> {
    let t = trim(s);
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return Some(t.into());
    }
    let (whole, frac) = t.split_once('.')?;
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b == b'0') {
        return None;
    }
    Some(whole.into())
}

pub fn parse_number(s: &str) -> Option<f64> {
    let t = trim(s);
    if let Some(v) = plain_decimal(t.as_bytes()) {
        return Some(v);
    }
    let t = t.strip_prefix('+').unwrap_or(t);
    t.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// The usual number of an extract (`600`, `-1`, `18600.00`): an optional
/// minus, then at most 15 digits with at most one point. None for anything
/// else, which the general parser then reads. The digits as an integer are
/// exact in an f64, and so is the power of ten, so the one division is
/// correctly rounded: the nearest f64 to the decimal, as `str::parse` gives.
fn plain_decimal(b: &[u8]) -> Option<f64> {
    const POW10: [f64; 16] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];
    let (neg, digits) = match b {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, b),
    };
    let (mut n, mut count, mut point) = (0u64, 0usize, None);
    for (i, &c) in digits.iter().enumerate() {
        match c {
            // Past 15 digits the integer may not be exact (or may overflow).
            b'0'..=b'9' if count < 15 => {
                n = n * 10 + u64::from(c - b'0');
                count += 1;
            }
            b'.' if point.is_none() => point = Some(i),
            _ => return None,
        }
    }
    if count == 0 {
        return None;
    }
    let scale = point.map_or(0, |p| digits.len() - p - 1);
    let v = n as f64 / POW10[scale];
    Some(if neg { -v } else { v })
}

/// Money with an optional `$` and thousands separators.
pub fn parse_money(s: &str) -> Option<f64> {
    if let Some(v) = plain_decimal(s.as_bytes()) {
        return Some(v);
    }
    if !s.contains(['$', ',']) {
        return parse_number(s);
    }
    let cleaned: String = s.trim().chars().filter(|&c| c != '$' && c != ',').collect();
    parse_number(&cleaned)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shortcut gives `str::parse`'s value, bit for bit, and leaves to
    /// it whatever it does not read.
    #[test]
    fn plain_decimals_parse_as_str_parse() {
        let mut cases: Vec<String> = [
            "0",
            "-0",
            "0.0",
            "-0.00",
            "600",
            "-1",
            "18600.00",
            "0.1",
            ".5",
            "5.",
            "-.5",
            "123456789012345",
            "0.00000000000001",
            "9.99999999999999",
            "1234567.891",
            "00012",
            "-600.5",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // A spread of digit strings and point positions (a fixed LCG).
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..20_000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let len = 1 + (x >> 59) as usize % 15;
            let digits: String = (0..len).map(|i| char::from(b'0' + ((x >> (i * 4)) % 10) as u8)).collect();
            let at = (x >> 40) as usize % (len + 1);
            let s = if (x >> 33) & 1 == 1 { format!("{}.{}", &digits[..at], &digits[at..]) } else { digits };
            cases.push(if (x >> 34) & 1 == 1 { format!("-{s}") } else { s });
        }
        for c in &cases {
            let want: f64 = c.parse().unwrap();
            let got = plain_decimal(c.as_bytes()).unwrap_or_else(|| panic!("{c} not read"));
            assert_eq!(got.to_bits(), want.to_bits(), "{c}");
        }
        let long = "9".repeat(40);
        for c in ["", "-", ".", "-.", "1.2.3", "1e5", "+5", " 5", "1,000", "$5", "1234567890123456", &long, "NaN", "inf", "5-"] {
            assert_eq!(plain_decimal(c.as_bytes()), None, "{c}");
        }
        assert_eq!(parse_money("$1,234.50"), Some(1234.5));
        assert_eq!(parse_number(" +5 "), Some(5.0));
        assert_eq!(parse_number(&long), long.parse().ok());
    }

    #[test]
    fn trim_is_str_trim() {
        for v in ["", " ", "a", " a", "a ", "\u{a0}a\u{a0}", "\u{2003}", "a\tb", "\x01a", "ab", "a b", "\na\r\n"] {
            assert_eq!(trim(v), v.trim(), "{v:?}");
        }
    }

    #[test]
    fn codes_normalize() {
        assert_eq!(normalize_dx("g35.a"), "G35A");
        assert_eq!(normalize_dx("G35A"), normalize_dx("G35.A"));
        assert_eq!(display_dx("G35B0"), "G35.B0");
        assert_eq!(normalize_hcpcs(" j2350 "), "J2350");
    }

    #[test]
    fn ndc_forms() {
        let want = Some(Text::new("50242015001"));
        assert_eq!(normalize_ndc("50242-0150-01"), want);
        assert_eq!(normalize_ndc("50242015001"), want);
        assert_eq!(normalize_ndc("50242-150-01"), want);
        assert_eq!(normalize_ndc("0002-1433-80"), Some(Text::new("00002143380")));
        assert_eq!(normalize_ndc("50242-0150-1"), Some(Text::new("50242015001")));
        assert_eq!(normalize_ndc("5024215001"), None);
        assert_eq!(normalize_ndc_bytes(b" 50242-150-01 "), Some(*b"50242015001"));
    }

    #[test]
    fn pos_bill_type_revenue_and_units() {
        assert_eq!(normalize_pos(" 12"), "12");
        assert_eq!(normalize_pos("12.0"), "12");
        assert_eq!(normalize_pos("2"), "02");
        assert_eq!(normalize_pos("A1"), "A1");
        assert_eq!(normalize_pos("012"), "12");
        for b in ["0341", "341", " 341 ", "341.0"] {
            assert_eq!(normalize_bill_type(b).as_deref(), Some("341"), "{b}");
        }
        assert_eq!(normalize_bill_type("0131").as_deref(), Some("131"));
        for b in ["34", "1341", "x41", "", "34.5"] {
            assert_eq!(normalize_bill_type(b), None, "{b}");
        }
        for r in ["636", "0636", "636.0"] {
            assert_eq!(normalize_revenue(r).as_deref(), Some("0636"), "{r}");
        }
        assert_eq!(normalize_revenue("25"), Some(Text::new("0025")));
        assert_eq!(normalize_revenue("12345"), None);
        assert_eq!(parse_number("600.000"), Some(600.0));
        assert_eq!(parse_number("six"), None);
        assert_eq!(parse_money("$1,234.50"), Some(1234.5));
    }
}
