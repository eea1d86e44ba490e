//! The rule catalogue as data: ids, categories, default severities, one-line
//! summaries. The rule functions live in `rules/`, in this order; the policy
//! validates its rule switches against this list.

use serde::{Deserialize, Serialize};

/// The catalogue version this build implements (RULES.md "version 3").
pub const CATALOGUE_VERSION: u32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

pub struct RuleMeta {
    pub id: &'static str,
    pub category: &'static str,
    pub severity: Severity,
    pub summary: &'static str,
}

use Severity::*;

const fn rule(id: &'static str, category: &'static str, severity: Severity, summary: &'static str) -> RuleMeta {
    RuleMeta { id, category, severity, summary }
}

pub const CATALOGUE: &[RuleMeta] = &[
    rule("DX_NOT_MS", "code_set", Error, "drug line carries no multiple sclerosis diagnosis"),
    rule(
        "DX_NOT_VALID_ON_DOS",
        "code_set",
        Error,
        "MS diagnosis not valid on the date of service (G35 on or after 2025-10-01; a G35 subcode before that date)",
    ),
    rule("DX_OFF_LABEL", "code_set", Warning, "all MS diagnoses are outside the label (G35.C2 non-active SPMS)"),
    rule("ADDON_WITHOUT_PRIMARY", "code_set", Error, "add-on code (99602) billed without its primary (99601) that day"),
    rule("UNITS_OVER_DAILY_MAX", "code_set", Error, "net units per person, date and code above the daily maximum"),
    rule("DUPLICATE_LINE", "code_set", Warning, "same person, date, code, units and modifiers billed more than once"),
    rule("NDC_MISMATCH", "code_set", Error, "drug line NDC is not a listed NDC of the drug"),
    rule("POS_NOT_HOME", "code_set", Error, "home-infusion code billed outside the home (place of service, else type of bill)"),
    rule("WASTAGE_MODIFIER", "code_set", Error, "Medicare FFS drug line without exactly one of JW/JZ"),
    rule("S_CODE_MEDICARE", "code_set", Error, "S-code per diem billed to Medicare FFS, which does not pay S-codes"),
    rule("PER_DIEM_WITHOUT_DRUG", "code_set", Warning, "per diem whose span holds no day with a J-code drug or pharmacy-supplied dose"),
    rule("DUPLICATE_PER_DIEM", "code_set", Warning, "steroid per diem (S9490) on an infusion day that has the primary per diem (S9379)"),
    rule("PREMED_NOT_BILLED", "code_set", Info, "IV infusion with no steroid premedication billed that day"),
    rule("FORMULATION_CONFLICT", "code_set", Error, "IV and subcutaneous formulations both billed on one day"),
    rule("DOSE_UNEXPECTED", "dosing", Error, "dose is not a label dose (J2350 300/600 mg, J2351 920 mg)"),
    rule("INITIAL_PAIR_INTERVAL", "dosing", Warning, "second 300 mg initiation dose outside days 10-21 after the first"),
    rule("INITIAL_PAIR_INCOMPLETE", "dosing", Warning, "initiation 300 mg dose with no second half within 35 days"),
    rule("INTERVAL_TOO_SHORT", "dosing", Error, "dose less than 140 days (20 weeks) after the previous one"),
    rule("INTERVAL_OVERDUE", "dosing", Info, "dose more than 210 days (30 weeks) after the previous one"),
    rule(
        "CROSS_BENEFIT_DUPLICATE",
        "cross_benefit",
        Error,
        "one administration paid under both the medical (J-code) and the pharmacy (NDC) benefit",
    ),
    rule(
        "DX_CODE_INVALID",
        "code_set",
        Error,
        "a claim's diagnosis is not billable on the line's date in the official ICD-10-CM code set (header, ended, not yet valid, unknown)",
    ),
];

pub fn rule_index(id: &str) -> Option<usize> {
    CATALOGUE.iter().position(|r| r.id == id)
}
