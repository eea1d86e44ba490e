//! One input row (raw field text by column slot) -> one normalized `Line`, or
//! the reason it cannot be read. Shared by every reader so CSV and Parquet
//! copies of an extract give the same lines.

use crate::columns::{N_DX, N_MOD, Presence, col};
use crate::date::Date;
use crate::policy::Policy;
use crate::text::{Codes, Text};

/// A normalized claim line. Codes are in their comparison forms: HCPCS
/// trimmed and upper-cased, ICD-10-CM upper-cased without the dot, NDC as 11
/// digits.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub person_id: Text,
    pub claim_id: Text,
    pub claim_line_number: i64,
    pub service_date: Date,
    /// End of the line's span (line end, else claim end), when given.
    pub end_date: Option<Date>,
    pub hcpcs: Text,
    pub units: f64,
    /// Normalized diagnoses in column order, without repeats.
    pub dx: Codes,
    /// Upper-cased, sorted, de-duplicated.
    pub modifiers: Vec<Text>,
    pub pos: Option<Text>,
    /// 11-digit NDC, or the raw text when it is in no recognised NDC form.
    pub ndc: Option<Text>,
    pub program: Option<Text>,
    pub rendering_npi: Option<Text>,
    pub billing_npi: Option<Text>,
    pub paid_amount: Option<f64>,
    pub allowed_amount: Option<f64>,
    pub charge_amount: Option<f64>,
    pub presence: Presence,
    pub file: u32,
    pub source_line: u64,
    /// Raw row text, kept only for reversals (needed if one reverses nothing).
    pub raw: Option<Box<str>>,
}

/// Why a row was rejected: a stable code and the detail an analyst reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub code: &'static str,
    pub detail: String,
}

impl Reject {
    pub fn new(code: &'static str, detail: impl Into<String>) -> Reject {
        Reject { code, detail: detail.into() }
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
    let t = s.trim();
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

/// NDC to 11 digits (5-4-2). Dashed 10-digit forms 4-4-2, 5-3-2 and 5-4-1 are
/// padded; an undashed 10-digit NDC is ambiguous and is returned as None.
pub fn normalize_ndc(s: &str) -> Option<Text> {
    let s = s.trim();
    if !s.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        return None;
    }
    let mut parts = s.split('-');
    let (a, b, c) = (parts.next().unwrap_or(""), parts.next(), parts.next());
    if parts.next().is_some() {
        return None;
    }
    let (a, b, c) = match (b, c) {
        (None, None) if a.len() == 11 => return Some(Text::new(a)),
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
        out[n..n + seg.len()].copy_from_slice(seg.as_bytes());
        n += seg.len();
    }
    // Digits only.
    std::str::from_utf8(&out).ok().map(Text::new)
}

/// Place of service to its two-digit form: `12`, ` 12`, `12.0` -> `12`.
pub fn normalize_pos(s: &str) -> Text {
    let t = s.trim();
    if t.len() == 2 && t.bytes().all(|b| b.is_ascii_digit()) {
        return Text::new(t);
    }
    if let Ok(v) = t.parse::<f64>()
        && v.fract() == 0.0
        && (0.0..100.0).contains(&v)
    {
        let v = v as u8;
        let d = [b'0' + v / 10, b'0' + v % 10];
        return Text::new(std::str::from_utf8(&d).unwrap_or_default());
    }
    Text::new(t)
}

pub fn parse_number(s: &str) -> Option<f64> {
    let t = s.trim();
    let t = t.strip_prefix('+').unwrap_or(t);
    t.parse::<f64>().ok().filter(|v| v.is_finite())
}

fn parse_money(s: &str) -> Option<f64> {
    if !s.contains(['$', ',']) {
        return parse_number(s);
    }
    let cleaned: String = s.trim().chars().filter(|&c| c != '$' && c != ',').collect();
    parse_number(&cleaned)
}

fn parse_line_number(s: &str) -> Option<i64> {
    let t = s.trim();
    t.parse::<i64>().ok().or_else(|| parse_number(t).filter(|v| v.fract() == 0.0 && v.abs() < 1e15).map(|v| v as i64))
}

fn nonempty(v: Option<&str>) -> Option<&str> {
    v.map(str::trim).filter(|s| !s.is_empty())
}

/// Context a reader passes with every row of one file.
pub struct RowContext<'a> {
    pub policy: &'a Policy,
    pub presence: Presence,
    pub file: u32,
    /// The last payer/plan/claim-type texts (each as length + bytes) and
    /// their program: extracts repeat a few payers, so most rows hit it.
    pub program_cache: (Vec<u8>, Text),
}

impl<'a> RowContext<'a> {
    pub fn new(policy: &'a Policy, presence: Presence, file: u32) -> RowContext<'a> {
        RowContext { policy, presence, file, program_cache: (Vec::new(), Text::default()) }
    }

    fn program(&mut self, parts: [Option<&str>; 3]) -> Text {
        let mut key = [0u8; 192];
        let mut n = 0;
        for p in parts {
            let p = p.unwrap_or("").as_bytes();
            if n + 4 + p.len() > key.len() {
                // Long texts: no caching.
                return Text::new(self.policy.payer_program_of(&parts));
            }
            key[n..n + 4].copy_from_slice(&(p.len() as u32).to_le_bytes());
            key[n + 4..n + 4 + p.len()].copy_from_slice(p);
            n += 4 + p.len();
        }
        if self.program_cache.0 != key[..n] {
            self.program_cache.0.clear();
            self.program_cache.0.extend_from_slice(&key[..n]);
            self.program_cache.1 = Text::new(self.policy.payer_program_of(&parts));
        }
        self.program_cache.1.clone()
    }
}

/// Normalizes one in-scope row. `get(slot)` returns the raw text of a column
/// (None when the file lacks it or the value is null).
pub fn normalize_row<'r>(ctx: &mut RowContext, source_line: u64, get: impl Fn(usize) -> Option<&'r str>) -> Result<Line, Reject> {
    let person = nonempty(get(col::PERSON_ID))
        .or_else(|| nonempty(get(col::MEMBER_ID)))
        .ok_or_else(|| Reject::new("empty_person", "person_id (and member_id) is empty"))?;
    let code = nonempty(get(col::HCPCS)).ok_or_else(|| Reject::new("empty_code", "hcpcs_code is empty"))?;
    let date_text = nonempty(get(col::LINE_START)).or_else(|| nonempty(get(col::CLAIM_START)));
    let service_date = match date_text {
        None => return Err(Reject::new("empty_date", "claim_line_start_date and claim_start_date are empty")),
        Some(t) => Date::parse(t)
            .ok_or_else(|| Reject::new("bad_date", format!("service date {:?} is not YYYY-MM-DD, YYYYMMDD or MM/DD/YYYY", clip(t))))?,
    };
    let end_date = match nonempty(get(col::LINE_END)).or_else(|| nonempty(get(col::CLAIM_END))) {
        None => None,
        Some(t) => Some(Date::parse(t).ok_or_else(|| Reject::new("bad_date", format!("end date {:?} is not a date", clip(t))))?),
    };
    let units_text = nonempty(get(col::UNITS)).ok_or_else(|| Reject::new("bad_units", "service_unit_quantity is empty"))?;
    let units = parse_number(units_text)
        .ok_or_else(|| Reject::new("bad_units", format!("service_unit_quantity {:?} is not a number", clip(units_text))))?;
    let claim_id = nonempty(get(col::CLAIM_ID)).ok_or_else(|| Reject::new("empty_claim_id", "claim_id is empty"))?;
    let ln_text = nonempty(get(col::CLAIM_LINE_NUMBER)).unwrap_or("");
    let claim_line_number = parse_line_number(ln_text)
        .ok_or_else(|| Reject::new("bad_line_number", format!("claim_line_number {:?} is not an integer", clip(ln_text))))?;

    let dx = Codes::from_codes((0..N_DX).filter_map(|i| nonempty(get(col::DX1 + i)).map(dx_text)));
    let mut modifiers: Vec<Text> = Vec::new();
    for i in 0..N_MOD {
        if let Some(m) = nonempty(get(col::MOD1 + i)) {
            modifiers.push(Text::upper(m));
        }
    }
    if modifiers.len() > 1 {
        modifiers.sort();
        modifiers.dedup();
    }

    let program = if ctx.presence.payer { Some(ctx.program([get(col::PAYER), get(col::PLAN), get(col::CLAIM_TYPE)])) } else { None };
    let ndc = nonempty(get(col::NDC)).map(|n| normalize_ndc(n).unwrap_or_else(|| Text::new(n)));
    let is_reversal = units < 0.0;
    Ok(Line {
        person_id: Text::new(person),
        claim_id: Text::new(claim_id),
        claim_line_number,
        service_date,
        end_date,
        hcpcs: Text::upper(code),
        units,
        dx,
        modifiers,
        pos: nonempty(get(col::POS)).map(normalize_pos),
        ndc,
        program,
        rendering_npi: nonempty(get(col::RENDERING_NPI)).map(Text::new),
        billing_npi: nonempty(get(col::BILLING_NPI)).map(Text::new),
        paid_amount: nonempty(get(col::PAID)).and_then(parse_money),
        allowed_amount: nonempty(get(col::ALLOWED)).and_then(parse_money),
        charge_amount: nonempty(get(col::CHARGE)).and_then(parse_money),
        presence: ctx.presence,
        file: ctx.file,
        source_line,
        raw: is_reversal.then(Box::default),
    })
}

fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }

    #[test]
    fn pos_and_units() {
        assert_eq!(normalize_pos(" 12"), "12");
        assert_eq!(normalize_pos("12.0"), "12");
        assert_eq!(normalize_pos("2"), "02");
        assert_eq!(parse_number("600.000"), Some(600.0));
        assert_eq!(parse_number("six"), None);
    }
}
