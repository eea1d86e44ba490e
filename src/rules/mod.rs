//! Rule catalogue v1. Each rule is a pure function over one patient that
//! returns its findings and how many items it evaluated or could not.

mod code_set;
mod dosing;

use serde::{Deserialize, Serialize};

use crate::date::Date;
use crate::episodes::Patient;
use crate::normalize::Line;
use crate::policy::Policy;
use crate::text::Text;

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

pub struct RuleDef {
    pub id: &'static str,
    pub category: &'static str,
    pub severity: Severity,
    pub summary: &'static str,
    pub eval: fn(&Patient, &Ctx) -> RuleOutput,
}

use Severity::*;

pub const RULES: &[RuleDef] = &[
    RuleDef {
        id: "DX_NOT_MS",
        category: "code_set",
        severity: Error,
        summary: "drug line carries no multiple sclerosis diagnosis",
        eval: code_set::dx_not_ms,
    },
    RuleDef {
        id: "DX_NOT_VALID_ON_DOS",
        category: "code_set",
        severity: Error,
        summary: "MS diagnosis not valid on the date of service (G35 from 2025-10-01, subcodes before)",
        eval: code_set::dx_not_valid_on_dos,
    },
    RuleDef {
        id: "DX_OFF_LABEL",
        category: "code_set",
        severity: Warning,
        summary: "all MS diagnoses are outside the label (G35.C2 non-active SPMS)",
        eval: code_set::dx_off_label,
    },
    RuleDef {
        id: "ADDON_WITHOUT_PRIMARY",
        category: "code_set",
        severity: Error,
        summary: "add-on code (99602) billed without its primary (99601) that day",
        eval: code_set::addon_without_primary,
    },
    RuleDef {
        id: "UNITS_OVER_DAILY_MAX",
        category: "code_set",
        severity: Error,
        summary: "net units per person, date and code above the daily maximum",
        eval: code_set::units_over_daily_max,
    },
    RuleDef {
        id: "DUPLICATE_LINE",
        category: "code_set",
        severity: Warning,
        summary: "same person, date, code, units and modifiers billed more than once",
        eval: code_set::duplicate_line,
    },
    RuleDef {
        id: "NDC_MISMATCH",
        category: "code_set",
        severity: Error,
        summary: "drug line NDC is not a listed NDC of the drug",
        eval: code_set::ndc_mismatch,
    },
    RuleDef {
        id: "POS_NOT_HOME",
        category: "code_set",
        severity: Error,
        summary: "home-infusion code billed outside place of service 12 (home)",
        eval: code_set::pos_not_home,
    },
    RuleDef {
        id: "WASTAGE_MODIFIER",
        category: "code_set",
        severity: Error,
        summary: "Medicare FFS drug line without exactly one of JW/JZ",
        eval: code_set::wastage_modifier,
    },
    RuleDef {
        id: "S_CODE_MEDICARE",
        category: "code_set",
        severity: Error,
        summary: "S-code per diem billed to Medicare FFS, which does not pay S-codes",
        eval: code_set::s_code_medicare,
    },
    RuleDef {
        id: "PER_DIEM_WITHOUT_DRUG",
        category: "code_set",
        severity: Warning,
        summary: "per diem whose span holds no day with a J-code drug",
        eval: code_set::per_diem_without_drug,
    },
    RuleDef {
        id: "DUPLICATE_PER_DIEM",
        category: "code_set",
        severity: Warning,
        summary: "steroid per diem (S9490) on an infusion day that has the primary per diem (S9379)",
        eval: code_set::duplicate_per_diem,
    },
    RuleDef {
        id: "PREMED_NOT_BILLED",
        category: "code_set",
        severity: Info,
        summary: "IV infusion with no steroid premedication billed that day",
        eval: code_set::premed_not_billed,
    },
    RuleDef {
        id: "FORMULATION_CONFLICT",
        category: "code_set",
        severity: Error,
        summary: "IV and subcutaneous formulations both billed on one day",
        eval: code_set::formulation_conflict,
    },
    RuleDef {
        id: "DOSE_UNEXPECTED",
        category: "dosing",
        severity: Error,
        summary: "dose is not a label dose (J2350 300/600 mg, J2351 920 mg)",
        eval: dosing::dose_unexpected,
    },
    RuleDef {
        id: "INITIAL_PAIR_INTERVAL",
        category: "dosing",
        severity: Warning,
        summary: "second 300 mg initiation dose outside days 10-21 after the first",
        eval: dosing::initial_pair_interval,
    },
    RuleDef {
        id: "INITIAL_PAIR_INCOMPLETE",
        category: "dosing",
        severity: Warning,
        summary: "initiation 300 mg dose with no second half within 35 days",
        eval: dosing::initial_pair_incomplete,
    },
    RuleDef {
        id: "INTERVAL_TOO_SHORT",
        category: "dosing",
        severity: Error,
        summary: "dose less than 140 days (20 weeks) after the previous one",
        eval: dosing::interval_too_short,
    },
    RuleDef {
        id: "INTERVAL_OVERDUE",
        category: "dosing",
        severity: Info,
        summary: "dose more than 210 days (30 weeks) after the previous one",
        eval: dosing::interval_overdue,
    },
];

pub fn rule_index(id: &str) -> Option<usize> {
    RULES.iter().position(|r| r.id == id)
}

/// Run-wide context: policy, date range, horizon.
pub struct Ctx<'a> {
    pub policy: &'a Policy,
    pub from: Option<Date>,
    pub to: Option<Date>,
    pub horizon: Date,
}

impl Ctx<'_> {
    pub fn in_range(&self, d: Date) -> bool {
        self.from.is_none_or(|f| d >= f) && self.to.is_none_or(|t| d <= t)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub rule_id: &'static str,
    pub category: &'static str,
    pub severity: Severity,
    pub person_id: Text,
    pub claim_id: Text,
    pub claim_line_number: i64,
    pub service_date: Date,
    pub hcpcs_code: Text,
    pub episode_id: Option<String>,
    pub message: String,
    pub evidence: String,
    pub units: f64,
    pub paid_amount: Option<f64>,
    pub allowed_amount: Option<f64>,
    pub payer_program: Option<Text>,
    pub rendering_npi: Option<Text>,
    pub billing_npi: Option<Text>,
    pub file: u32,
    pub source_line: u64,
}

#[derive(Debug, Default)]
pub struct RuleOutput {
    pub findings: Vec<Finding>,
    pub evaluated: u64,
    pub not_evaluable: u64,
}

impl RuleOutput {
    /// Records a finding on `line` for `rule`; severity comes from the policy.
    fn flag(&mut self, rule: &'static str, p: &Patient, ctx: &Ctx, i: usize, message: String, evidence: serde_json::Value) {
        let def = &RULES[rule_index(rule).unwrap_or(0)];
        let l: &Line = p.lines[i];
        self.findings.push(Finding {
            rule_id: def.id,
            category: def.category,
            severity: ctx.policy.severity(rule).unwrap_or(def.severity),
            person_id: p.person_id.clone(),
            claim_id: l.claim_id.clone(),
            claim_line_number: l.claim_line_number,
            service_date: l.service_date,
            hcpcs_code: l.hcpcs.clone(),
            episode_id: p.episode_of[i].map(|k| p.admins[k].episode_id.clone()),
            message,
            evidence: evidence.to_string(),
            units: l.units,
            paid_amount: l.paid_amount,
            allowed_amount: l.allowed_amount,
            payer_program: l.program.clone(),
            rendering_npi: l.rendering_npi.clone(),
            billing_npi: l.billing_npi.clone(),
            file: l.file,
            source_line: l.source_line,
        });
    }
}

/// Per-rule counts for the manifest.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Tally {
    pub evaluated: u64,
    pub flagged: u64,
    pub not_evaluable: u64,
}

/// Runs every enabled rule on one patient.
pub fn evaluate(p: &Patient, ctx: &Ctx) -> (Vec<Finding>, Vec<Tally>) {
    let mut findings = Vec::new();
    let mut tallies = vec![Tally::default(); RULES.len()];
    for (k, rule) in RULES.iter().enumerate() {
        if ctx.policy.severity(rule.id).is_none() {
            continue;
        }
        let out = (rule.eval)(p, ctx);
        tallies[k] = Tally { evaluated: out.evaluated, flagged: out.findings.len() as u64, not_evaluable: out.not_evaluable };
        findings.extend(out.findings);
    }
    (findings, tallies)
}

/// Formats units without a trailing `.0` for whole numbers.
pub fn units(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 { format!("{}", v as i64) } else { format!("{v}") }
}

#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod tests;
