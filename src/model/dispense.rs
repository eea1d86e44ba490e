//! A normalized pharmacy claim line (NCPDP): one dispensing of a policy
//! drug's NDC.

use super::date::Date;
use super::text::Text;

#[derive(Debug, Clone, PartialEq)]
pub struct Dispense {
    pub person_id: Text,
    pub claim_id: Text,
    pub claim_line_number: i64,
    pub date: Date,
    /// 11-digit NDC (only policy NDCs are kept).
    pub ndc: Text,
    /// NCPDP quantity (mL for solutions); negative = reversal.
    pub quantity: f64,
    pub days_supply: Option<f64>,
    pub paid_amount: Option<f64>,
    pub allowed_amount: Option<f64>,
    pub program: Option<Text>,
    pub dispensing_npi: Option<Text>,
    pub prescribing_npi: Option<Text>,
    pub file: u32,
    pub source_line: u64,
    /// Raw row text, kept only for reversals (needed if one reverses nothing).
    pub raw: Option<Box<str>>,
}
