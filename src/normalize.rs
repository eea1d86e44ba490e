//! One input row (raw field text by column slot) -> one normalized `Line`,
//! `Dispense` or `UncodedDrugDay`, or the reason it cannot be read. Shared by
//! every reader so CSV and Parquet copies of an extract give the same values.

use crate::columns::{N_DX, N_MOD, col};
use crate::model::codes::{dx_text, normalize_bill_type, normalize_ndc, normalize_pos, parse_money, parse_number, trim};
use crate::model::{Codes, Date, Dispense, Line, Presence, Text, UncodedDrugDay};
use crate::policy::Policy;

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

fn parse_line_number(s: &str) -> Option<i64> {
    let t = trim(s);
    t.parse::<i64>().ok().or_else(|| parse_number(t).filter(|v| v.fract() == 0.0 && v.abs() < 1e15).map(|v| v as i64))
}

fn nonempty(v: Option<&str>) -> Option<&str> {
    v.map(trim).filter(|s| !s.is_empty())
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

fn person<'r>(get: &impl Fn(usize) -> Option<&'r str>) -> Result<&'r str, Reject> {
    nonempty(get(col::PERSON_ID))
        .or_else(|| nonempty(get(col::MEMBER_ID)))
        .ok_or_else(|| Reject::new("empty_person", "person_id (and member_id) is empty"))
}

/// Date of service: the line start, else the claim start.
fn service_date<'r>(get: &impl Fn(usize) -> Option<&'r str>) -> Result<Date, Reject> {
    match nonempty(get(col::LINE_START)).or_else(|| nonempty(get(col::CLAIM_START))) {
        None => Err(Reject::new("empty_date", "claim_line_start_date and claim_start_date are empty")),
        Some(t) => parse_date(t, "service date"),
    }
}

fn parse_date(t: &str, what: &str) -> Result<Date, Reject> {
    Date::parse(t).ok_or_else(|| Reject::new("bad_date", format!("{what} {:?} is not YYYY-MM-DD, YYYYMMDD or MM/DD/YYYY", clip(t))))
}

/// Claim id and line number, required on every kept row of either kind.
fn claim_key<'r>(get: &impl Fn(usize) -> Option<&'r str>) -> Result<(&'r str, i64), Reject> {
    let claim_id = nonempty(get(col::CLAIM_ID)).ok_or_else(|| Reject::new("empty_claim_id", "claim_id is empty"))?;
    let ln_text = nonempty(get(col::CLAIM_LINE_NUMBER)).unwrap_or("");
    let claim_line_number = parse_line_number(ln_text)
        .ok_or_else(|| Reject::new("bad_line_number", format!("claim_line_number {:?} is not an integer", clip(ln_text))))?;
    Ok((claim_id, claim_line_number))
}

/// Normalizes one in-scope medical row. `get(slot)` returns the raw text of
/// a column (None when the file lacks it or the value is null).
pub fn normalize_row<'r>(ctx: &mut RowContext, source_line: u64, get: impl Fn(usize) -> Option<&'r str>) -> Result<Line, Reject> {
    let person = person(&get)?;
    let code = nonempty(get(col::HCPCS)).ok_or_else(|| Reject::new("empty_code", "hcpcs_code is empty"))?;
    let service_date = service_date(&get)?;
    let end_date = match nonempty(get(col::LINE_END)).or_else(|| nonempty(get(col::CLAIM_END))) {
        None => None,
        Some(t) => Some(Date::parse(t).ok_or_else(|| Reject::new("bad_date", format!("end date {:?} is not a date", clip(t))))?),
    };
    let units_text = nonempty(get(col::UNITS)).ok_or_else(|| Reject::new("bad_units", "service_unit_quantity is empty"))?;
    let units = parse_number(units_text)
        .ok_or_else(|| Reject::new("bad_units", format!("service_unit_quantity {:?} is not a number", clip(units_text))))?;
    let (claim_id, claim_line_number) = claim_key(&get)?;

    let dx = Codes::from_codes((0..N_DX).filter_map(|i| nonempty(get(col::DX1 + i)).map(dx_text)));
    let modifiers = modifier_list((0..N_MOD).filter_map(|i| nonempty(get(col::MOD1 + i))));

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
        bill_type: nonempty(get(col::BILL_TYPE)).and_then(normalize_bill_type),
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

/// The person and date of a kept institutional line without HCPCS code
/// (pharmacy revenue code): only what PREMED_NOT_BILLED reads is checked.
pub fn normalize_uncoded_drug<'r>(get: impl Fn(usize) -> Option<&'r str>) -> Result<UncodedDrugDay, Reject> {
    Ok(UncodedDrugDay { person_id: Text::new(person(&get)?), date: service_date(&get)? })
}

/// Normalizes one in-scope pharmacy row (a policy NDC).
pub fn normalize_dispense<'r>(ctx: &mut RowContext, source_line: u64, get: impl Fn(usize) -> Option<&'r str>) -> Result<Dispense, Reject> {
    let person = person(&get)?;
    let date = match nonempty(get(col::DISPENSING_DATE)) {
        None => return Err(Reject::new("empty_date", "dispensing_date is empty")),
        Some(t) => parse_date(t, "dispensing date")?,
    };
    let ndc_text = nonempty(get(col::NDC)).unwrap_or("");
    // The reader keeps only rows whose NDC normalizes to a policy NDC.
    let ndc = normalize_ndc(ndc_text).unwrap_or_else(|| Text::new(ndc_text));
    let q_text = nonempty(get(col::QUANTITY)).ok_or_else(|| Reject::new("bad_quantity", "quantity is empty"))?;
    let quantity =
        parse_number(q_text).ok_or_else(|| Reject::new("bad_quantity", format!("quantity {:?} is not a number", clip(q_text))))?;
    let (claim_id, claim_line_number) = claim_key(&get)?;
    let program = if ctx.presence.payer { Some(ctx.program([get(col::PAYER), get(col::PLAN), None])) } else { None };
    Ok(Dispense {
        person_id: Text::new(person),
        claim_id: Text::new(claim_id),
        claim_line_number,
        date,
        ndc,
        quantity,
        days_supply: nonempty(get(col::DAYS_SUPPLY)).and_then(parse_number),
        paid_amount: nonempty(get(col::PAID)).and_then(parse_money),
        allowed_amount: nonempty(get(col::ALLOWED)).and_then(parse_money),
        program,
        dispensing_npi: nonempty(get(col::DISPENSING_NPI)).map(Text::new),
        prescribing_npi: nonempty(get(col::PRESCRIBING_NPI)).map(Text::new),
        file: ctx.file,
        source_line,
        raw: (quantity < 0.0).then(Box::default),
    })
}

/// Modifiers as one inline list: upper-cased, inner spaces removed (a space
/// separates list items), sorted, without repeats.
fn modifier_list<'r>(raw: impl Iterator<Item = &'r str>) -> Codes {
    let mut mods: [Text; N_MOD] = Default::default();
    let mut n = 0;
    for m in raw.take(N_MOD) {
        mods[n] = if m.contains(char::is_whitespace) { Text::upper(&m.split_whitespace().collect::<String>()) } else { Text::upper(m) };
        n += 1;
    }
    mods[..n].sort_unstable();
    Codes::from_codes(mods[..n].iter())
}

fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modifiers_are_upper_sorted_unique_and_spaceless() {
        let m = modifier_list(["kx", "JW", "j w", "KX"].into_iter());
        assert_eq!(m.iter().collect::<Vec<_>>(), ["JW", "KX"]);
        assert!(modifier_list(std::iter::empty()).is_empty());
        // At most N_MOD are read, as the columns allow.
        let many = modifier_list(["E", "D", "C", "B", "A", "Z"].into_iter());
        assert_eq!(many.iter().collect::<Vec<_>>(), ["A", "B", "C", "D", "E"]);
    }
}
