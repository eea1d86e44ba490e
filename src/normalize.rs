//! One input row (raw field text by column slot) -> one normalized `Line`,
//! `Dispense` or `UncodedDrugDay`, or the reason it cannot be read. Shared by
//! every reader so CSV and Parquet copies of an extract give the same values.

use crate::columns::{N_DX, N_MOD, Resolved, col};
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

/// One field as a reader supplies it: text, or, from a typed Parquet or
/// Arrow column in a slot read as a number or a date (`typed_slot`), the
/// value itself, so it is not written as text only to be parsed back. A
/// reader supplies a typed cell only where parsing its column's text would
/// give the same value: numbers finite, dates of years 1800-2999.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    Text(&'a str),
    Int(i64),
    Num(f64),
    Date(Date),
}

/// Numeric slots, the only ones that take `Cell::Int` and `Cell::Num`.
const NUMBER_SLOTS: [usize; 7] =
    [col::UNITS, col::PAID, col::ALLOWED, col::CHARGE, col::QUANTITY, col::DAYS_SUPPLY, col::CLAIM_LINE_NUMBER];
/// Date slots, the only ones that take `Cell::Date`.
const DATE_SLOTS: [usize; 5] = [col::LINE_START, col::CLAIM_START, col::LINE_END, col::CLAIM_END, col::DISPENSING_DATE];

/// What typed cell, if any, `slot` may be supplied as. Every other slot is
/// read as text, whatever its column's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypedSlot {
    /// A number: integers and floating point (line numbers integers only:
    /// a fractional one is rejected with its text).
    Number {
        integer_only: bool,
    },
    Date,
    Text,
}

pub fn typed_slot(slot: usize) -> TypedSlot {
    if NUMBER_SLOTS.contains(&slot) {
        TypedSlot::Number { integer_only: slot == col::CLAIM_LINE_NUMBER }
    } else if DATE_SLOTS.contains(&slot) {
        TypedSlot::Date
    } else {
        TypedSlot::Text
    }
}

/// A non-empty cell: text trimmed, typed cells as they are.
fn present(v: Option<Cell<'_>>) -> Option<Cell<'_>> {
    match v {
        Some(Cell::Text(t)) => Some(trim(t)).filter(|s| !s.is_empty()).map(Cell::Text),
        v => v,
    }
}

/// A text slot's non-empty value. Readers supply text slots as text.
fn nonempty(v: Option<Cell<'_>>) -> Option<&str> {
    match present(v) {
        Some(Cell::Text(t)) => Some(t),
        _ => None,
    }
}

/// A number from a present cell; the text for a message when it is not one.
fn number<'r>(c: Cell<'r>) -> Result<f64, &'r str> {
    match c {
        Cell::Text(t) => parse_number(t).ok_or(t),
        Cell::Int(v) => Ok(v as f64),
        Cell::Num(v) => Ok(v),
        Cell::Date(_) => Err(""),
    }
}

fn money(c: Cell) -> Option<f64> {
    match c {
        Cell::Text(t) => parse_money(t),
        c => number(c).ok(),
    }
}

fn line_number(c: Cell<'_>) -> Result<i64, &str> {
    match c {
        Cell::Text(t) => {
            t.parse::<i64>().ok().or_else(|| parse_number(t).filter(|v| v.fract() == 0.0 && v.abs() < 1e15).map(|v| v as i64)).ok_or(t)
        }
        Cell::Int(v) => Ok(v),
        _ => Err(""),
    }
}

fn date(c: Cell<'_>) -> Result<Date, &str> {
    match c {
        Cell::Text(t) => Date::parse(t).ok_or(t),
        Cell::Date(d) => Ok(d),
        _ => Err(""),
    }
}

/// Context a reader passes with every row of one file.
pub struct RowContext<'a> {
    pub policy: &'a Policy,
    pub presence: Presence,
    pub file: u32,
    /// Recent payer/plan/claim-type texts (as length + bytes each) and their
    /// program: an extract repeats a few dozen combinations, interleaved.
    programs: Vec<(Vec<u8>, Text)>,
    /// The entry the next new combination replaces, once `programs` is full.
    next_slot: usize,
    /// Diagnosis slots past the file's last diagnosis column are never read
    /// (an extract has a few of the `N_DX`).
    dx_slots: usize,
}

/// How many payer/plan/claim-type combinations `RowContext` remembers.
const PROGRAM_CACHE: usize = 32;

impl<'a> RowContext<'a> {
    /// The context for rows of a file with columns `resolved`: diagnosis
    /// slots are read up to the file's last diagnosis column only.
    pub fn new(policy: &'a Policy, resolved: &Resolved, file: u32) -> RowContext<'a> {
        let dx_slots = (0..N_DX).rev().find(|&i| resolved.has(col::DX1 + i)).map_or(0, |i| i + 1);
        RowContext { policy, presence: resolved.presence(), file, programs: Vec::new(), next_slot: 0, dx_slots }
    }

    fn program(&mut self, parts: [Option<Cell>; 3]) -> Text {
        let parts = parts.map(|p| match p {
            Some(Cell::Text(t)) => Some(t),
            _ => None,
        });
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
        let key = &key[..n];
        if let Some((_, program)) = self.programs.iter().find(|(k, _)| k.as_slice() == key) {
            return program.clone();
        }
        let program = Text::new(self.policy.payer_program_of(&parts));
        if self.programs.len() < PROGRAM_CACHE {
            self.programs.push((key.to_vec(), program.clone()));
        } else {
            self.programs[self.next_slot] = (key.to_vec(), program.clone());
            self.next_slot = (self.next_slot + 1) % PROGRAM_CACHE;
        }
        program
    }
}

fn person<'r>(get: &impl Fn(usize) -> Option<Cell<'r>>) -> Result<&'r str, Reject> {
    nonempty(get(col::PERSON_ID))
        .or_else(|| nonempty(get(col::MEMBER_ID)))
        .ok_or_else(|| Reject::new("empty_person", "person_id (and member_id) is empty"))
}

/// Date of service: the line start, else the claim start.
fn service_date<'r>(get: &impl Fn(usize) -> Option<Cell<'r>>) -> Result<Date, Reject> {
    match present(get(col::LINE_START)).or_else(|| present(get(col::CLAIM_START))) {
        None => Err(Reject::new("empty_date", "claim_line_start_date and claim_start_date are empty")),
        Some(c) => parse_date(c, "service date"),
    }
}

fn parse_date(c: Cell, what: &str) -> Result<Date, Reject> {
    date(c).map_err(|t| Reject::new("bad_date", format!("{what} {:?} is not YYYY-MM-DD, YYYYMMDD or MM/DD/YYYY", clip(t))))
}

/// Claim id and line number, required on every kept row of either kind.
fn claim_key<'r>(get: &impl Fn(usize) -> Option<Cell<'r>>) -> Result<(&'r str, i64), Reject> {
    let claim_id = nonempty(get(col::CLAIM_ID)).ok_or_else(|| Reject::new("empty_claim_id", "claim_id is empty"))?;
    let claim_line_number = line_number(present(get(col::CLAIM_LINE_NUMBER)).unwrap_or(Cell::Text("")))
        .map_err(|t| Reject::new("bad_line_number", format!("claim_line_number {:?} is not an integer", clip(t))))?;
    Ok((claim_id, claim_line_number))
}

/// Normalizes one in-scope medical row. `get(slot)` returns a column's cell
/// (None when the file lacks it or the value is null).
pub fn normalize_row<'r>(ctx: &mut RowContext, source_line: u64, get: impl Fn(usize) -> Option<Cell<'r>>) -> Result<Line, Reject> {
    let person = person(&get)?;
    let code = nonempty(get(col::HCPCS)).ok_or_else(|| Reject::new("empty_code", "hcpcs_code is empty"))?;
    let service_date = service_date(&get)?;
    let end_date = match present(get(col::LINE_END)).or_else(|| present(get(col::CLAIM_END))) {
        None => None,
        Some(c) => Some(date(c).map_err(|t| Reject::new("bad_date", format!("end date {:?} is not a date", clip(t))))?),
    };
    let units_cell = present(get(col::UNITS)).ok_or_else(|| Reject::new("bad_units", "service_unit_quantity is empty"))?;
    let units = number(units_cell).map_err(|t| Reject::new("bad_units", format!("service_unit_quantity {:?} is not a number", clip(t))))?;
    let (claim_id, claim_line_number) = claim_key(&get)?;

    let dx = Codes::from_codes((0..ctx.dx_slots).filter_map(|i| nonempty(get(col::DX1 + i)).map(dx_text)));
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
        paid_amount: present(get(col::PAID)).and_then(money),
        allowed_amount: present(get(col::ALLOWED)).and_then(money),
        charge_amount: present(get(col::CHARGE)).and_then(money),
        presence: ctx.presence,
        file: ctx.file,
        source_line,
        raw: is_reversal.then(Box::default),
    })
}

/// Slots normalization reads only when another slot of the row is empty:
/// member_id stands in for person_id, the claim dates for the line dates,
/// the charge for paid and allowed amounts.
pub const FALLBACK_SLOTS: [usize; 4] = [col::MEMBER_ID, col::CLAIM_START, col::CLAIM_END, col::CHARGE];

/// Whether normalizing a row reads fallback slot `slot` (one of
/// `FALLBACK_SLOTS`), from the row's other cells alone. A reader may leave a
/// fallback empty in a row that does not read it: the line, dispense or day
/// comes out the same, and so does a rejection. Only the raw text (of a
/// reject or a reversal) would lack the value: the reader then leaves it
/// empty, to be completed from the file (`parquet_fast::raw_rows`).
pub fn reads_fallback<'r>(slot: usize, get: impl Fn(usize) -> Option<Cell<'r>>) -> bool {
    let amount = |s: usize| present(get(s)).and_then(money);
    match slot {
        // As `person`, and as the row check's "empty person" (ASCII trim).
        col::MEMBER_ID => match get(col::PERSON_ID) {
            Some(Cell::Text(t)) => t.trim_ascii().is_empty() || trim(t).is_empty(),
            _ => true,
        },
        col::CLAIM_START => present(get(col::LINE_START)).is_none(),
        col::CLAIM_END => present(get(col::LINE_END)).is_none(),
        col::CHARGE => amount(col::PAID).is_none() && amount(col::ALLOWED).is_none(),
        _ => true,
    }
}

/// The person and date of a kept institutional line without HCPCS code
/// (pharmacy revenue code): only what PREMED_NOT_BILLED reads is checked.
pub fn normalize_uncoded_drug<'r>(get: impl Fn(usize) -> Option<Cell<'r>>) -> Result<UncodedDrugDay, Reject> {
    Ok(UncodedDrugDay { person_id: Text::new(person(&get)?), date: service_date(&get)? })
}

/// Normalizes one in-scope pharmacy row (a policy NDC).
pub fn normalize_dispense<'r>(ctx: &mut RowContext, source_line: u64, get: impl Fn(usize) -> Option<Cell<'r>>) -> Result<Dispense, Reject> {
    let person = person(&get)?;
    let date = match present(get(col::DISPENSING_DATE)) {
        None => return Err(Reject::new("empty_date", "dispensing_date is empty")),
        Some(c) => parse_date(c, "dispensing date")?,
    };
    let ndc_text = nonempty(get(col::NDC)).unwrap_or("");
    // The reader keeps only rows whose NDC normalizes to a policy NDC.
    let ndc = normalize_ndc(ndc_text).unwrap_or_else(|| Text::new(ndc_text));
    let q_cell = present(get(col::QUANTITY)).ok_or_else(|| Reject::new("bad_quantity", "quantity is empty"))?;
    let quantity = number(q_cell).map_err(|t| Reject::new("bad_quantity", format!("quantity {:?} is not a number", clip(t))))?;
    let (claim_id, claim_line_number) = claim_key(&get)?;
    let program = if ctx.presence.payer { Some(ctx.program([get(col::PAYER), get(col::PLAN), None])) } else { None };
    Ok(Dispense {
        person_id: Text::new(person),
        claim_id: Text::new(claim_id),
        claim_line_number,
        date,
        ndc,
        quantity,
        days_supply: present(get(col::DAYS_SUPPLY)).and_then(|c| number(c).ok()),
        paid_amount: present(get(col::PAID)).and_then(money),
        allowed_amount: present(get(col::ALLOWED)).and_then(money),
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
    fn a_fallback_is_read_only_where_its_primary_is_empty() {
        let row = |cells: Vec<(usize, Cell<'static>)>| move |s: usize| cells.iter().find(|c| c.0 == s).map(|c| c.1);
        let full = row(vec![
            (col::PERSON_ID, Cell::Text("P1")),
            (col::LINE_START, Cell::Date(Date(20_000))),
            (col::LINE_END, Cell::Text("2025-11-03")),
            (col::PAID, Cell::Text("0")),
        ]);
        for s in FALLBACK_SLOTS {
            assert!(!reads_fallback(s, &full), "slot {s}");
        }
        let empty = row(vec![
            (col::PERSON_ID, Cell::Text("  ")),
            (col::LINE_END, Cell::Text("")),
            (col::PAID, Cell::Text("n/a")),
            (col::ALLOWED, Cell::Text("")),
        ]);
        for s in FALLBACK_SLOTS {
            assert!(reads_fallback(s, &empty), "slot {s}");
        }
        // An allowed amount alone is enough to leave the charge unread.
        let allowed = row(vec![(col::ALLOWED, Cell::Num(12.5))]);
        assert!(!reads_fallback(col::CHARGE, &allowed));
    }

    /// Remembered programs are those of their own combination, however the
    /// combinations interleave and past the cache's size.
    #[test]
    fn remembered_programs_match_their_payer() {
        let policy = Policy::default_policy().unwrap();
        let resolved = Resolved { idx: [None; col::COUNT], width: 0, kind: crate::columns::FileKind::Medical };
        let mut ctx = RowContext::new(&policy, &resolved, 0);
        let payers: Vec<String> = (0..PROGRAM_CACHE + 8)
            .map(|i| match i % 4 {
                0 => format!("Medicare {i}"),
                1 => format!("State Medicaid {i}"),
                2 => format!("Acme Medicare Advantage {i}"),
                _ => format!("Aetna {i}"),
            })
            .collect();
        for round in 0..3 {
            for (i, p) in payers.iter().enumerate().rev().skip(round) {
                let plan = if i % 2 == 0 { Some(Cell::Text("Part B")) } else { None };
                let got = ctx.program([Some(Cell::Text(p)), plan, Some(Cell::Text("professional"))]);
                let want = policy.payer_program_of(&[Some(p), plan.map(|_| "Part B"), Some("professional")]);
                assert_eq!(got, want, "{p}, round {round}");
            }
        }
    }

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
