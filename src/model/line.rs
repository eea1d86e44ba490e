//! A normalized medical claim line, and the columns a file supplies.

use super::date::Date;
use super::text::{Codes, Text};

/// A normalized medical claim line (professional or institutional). Codes are
/// in their comparison forms (see `model::codes`).
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
    /// Upper-cased, sorted, de-duplicated, inner spaces removed; inline
    /// (no allocation per line).
    pub modifiers: Codes,
    pub pos: Option<Text>,
    /// Type of bill of an institutional claim, three digits (`341`).
    pub bill_type: Option<Text>,
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

/// Optional columns a file supplies; carried on each line, so a rule can tell
/// "absent column" (not evaluable) from "empty value".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Presence {
    pub payer: bool,
    pub pos: bool,
    pub modifiers: bool,
    pub ndc: bool,
    pub bill_type: bool,
}

/// A day on which a person has an institutional line with no HCPCS code and a
/// pharmacy revenue code (025x, 063x): a drug billed without detail. Only the
/// person and date matter (PREMED_NOT_BILLED), so no whole line is kept.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct UncodedDrugDay {
    pub person_id: Text,
    pub date: Date,
}
