//! The rules of catalogue v3. Each rule is a pure function over one patient
//! that returns its findings and how many items it evaluated or could not.
//! The catalogue itself (ids, categories, severities) is data in `model`.

mod code_set;
mod cross_benefit;
mod dosing;
mod dx_code;

use serde::{Deserialize, Serialize};

use crate::episodes::{Administration, Patient, Supply};
pub use crate::model::catalogue::{CATALOGUE as RULES, RuleMeta, Severity, rule_index};
use crate::model::{Date, Line, Text};
use crate::policy::{Basis, Policy};

type Eval = fn(&Patient, &Ctx) -> RuleOutput;

/// The rule functions, in catalogue order (a test checks the ids).
const EVAL: [(&str, Eval); RULES.len()] = [
    ("DX_NOT_MS", code_set::dx_not_ms),
    ("DX_NOT_VALID_ON_DOS", code_set::dx_not_valid_on_dos),
    ("DX_OFF_LABEL", code_set::dx_off_label),
    ("ADDON_WITHOUT_PRIMARY", code_set::addon_without_primary),
    ("UNITS_OVER_DAILY_MAX", code_set::units_over_daily_max),
    ("DUPLICATE_LINE", code_set::duplicate_line),
    ("NDC_MISMATCH", code_set::ndc_mismatch),
    ("POS_NOT_HOME", code_set::pos_not_home),
    ("WASTAGE_MODIFIER", code_set::wastage_modifier),
    ("S_CODE_MEDICARE", code_set::s_code_medicare),
    ("PER_DIEM_WITHOUT_DRUG", code_set::per_diem_without_drug),
    ("DUPLICATE_PER_DIEM", code_set::duplicate_per_diem),
    ("PREMED_NOT_BILLED", code_set::premed_not_billed),
    ("FORMULATION_CONFLICT", code_set::formulation_conflict),
    ("DOSE_UNEXPECTED", dosing::dose_unexpected),
    ("INITIAL_PAIR_INTERVAL", dosing::initial_pair_interval),
    ("INITIAL_PAIR_INCOMPLETE", dosing::initial_pair_incomplete),
    ("INTERVAL_TOO_SHORT", dosing::interval_too_short),
    ("INTERVAL_OVERDUE", dosing::interval_overdue),
    ("CROSS_BENEFIT_DUPLICATE", cross_benefit::cross_benefit_duplicate),
    ("DX_CODE_INVALID", dx_code::dx_code_invalid),
];

/// The rule function of a catalogue entry.
pub fn eval_of(k: usize) -> Eval {
    EVAL[k].1
}

/// Run-wide context: policy, date range, horizon.
pub struct Ctx<'a> {
    pub policy: &'a Policy,
    pub from: Option<Date>,
    pub to: Option<Date>,
    pub horizon: Date,
    /// Whether the run read any pharmacy extract: without one,
    /// CROSS_BENEFIT_DUPLICATE cannot be evaluated.
    pub pharmacy_input: bool,
}

impl Ctx<'_> {
    pub fn in_range(&self, d: Date) -> bool {
        self.from.is_none_or(|f| d >= f) && self.to.is_none_or(|t| d <= t)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable across runs (`model::finding_id`).
    pub id: String,
    #[serde(with = "crate::util::static_str")]
    pub rule_id: crate::util::StaticStr,
    #[serde(with = "crate::util::static_str")]
    pub category: crate::util::StaticStr,
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
    /// Money at stake by the rule's policy basis (RULES.md v3): the line,
    /// the dose, the excess, the smaller payment, or 0 for none; None when
    /// the extract has no amount for that basis.
    pub at_stake: Option<f64>,
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

/// An amount a rule can put at stake other than its line's (a dose, an
/// excess, a smaller payment): used when the policy prices the rule so.
pub(crate) struct Priced {
    pub basis: Basis,
    pub amount: Option<f64>,
    /// Where the amount came from, for the evidence.
    pub from: &'static str,
}

/// A line's payment: paid, else allowed, else billed (an extract taken
/// before adjudication, a pharmacy's own claims, has charges alone).
pub(crate) fn line_amount(l: &Line) -> (Option<f64>, &'static str) {
    match (l.paid_amount, l.allowed_amount, l.charge_amount) {
        (Some(x), _, _) => (Some(x), "line paid_amount"),
        (None, Some(x), _) => (Some(x), "line allowed_amount"),
        (None, None, Some(x)) => (Some(x), "line charge_amount"),
        _ => (None, "no amount on the line"),
    }
}

impl RuleOutput {
    /// Records a finding on line `i` for `rule`, priced by its line (or 0
    /// when the policy's basis is none); severity comes from the policy.
    /// Returns it for the rare rule that sets more.
    fn flag(&mut self, rule: &'static str, p: &Patient, ctx: &Ctx, i: usize, message: String, evidence: serde_json::Value) -> &mut Finding {
        self.flag_priced(rule, p, ctx, i, message, evidence, None)
    }

    /// `flag` for a rule that can also price a finding by `priced`: its
    /// amount is used when the policy's basis for the rule is its basis.
    /// The evidence records the basis, the amount and where it came from.
    #[allow(clippy::too_many_arguments)]
    fn flag_priced(
        &mut self,
        rule: &'static str,
        p: &Patient,
        ctx: &Ctx,
        i: usize,
        message: String,
        mut evidence: serde_json::Value,
        priced: Option<Priced>,
    ) -> &mut Finding {
        let k = rule_index(rule).unwrap_or(0);
        let def = &RULES[k];
        let l: &Line = p.lines[i];
        let basis = ctx.policy.basis_at(k);
        let (at_stake, from) = match (basis, priced) {
            (Basis::None, _) => (Some(0.0), "a clinical signal: nothing overpaid"),
            (b, Some(x)) if x.basis == b => (x.amount, x.from),
            // Line, or a basis this call site cannot price (the policy
            // refuses such a pairing, so only `line` gets here).
            _ => line_amount(l),
        };
        if let Some(obj) = evidence.as_object_mut() {
            obj.insert("at_stake".into(), serde_json::json!({"basis": basis.as_str(), "amount": at_stake, "from": from}));
        }
        self.findings.push(Finding {
            id: crate::model::finding_id(def.id, &p.person_id, &l.claim_id, l.claim_line_number, l.service_date),
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
            at_stake,
            payer_program: l.program.clone(),
            rendering_npi: l.rendering_npi.clone(),
            billing_npi: l.billing_npi.clone(),
            file: l.file,
            source_line: l.source_line,
        });
        let last = self.findings.len() - 1;
        &mut self.findings[last]
    }
}

/// Evidence about an administration, with its supply and, when a dispense
/// supplied it, the dispense.
fn with_supply(p: &Patient, a: &Administration, mut evidence: serde_json::Value) -> serde_json::Value {
    if a.supply == Supply::Pharmacy
        && let (Some(obj), Some(d)) = (evidence.as_object_mut(), a.dispense.and_then(|j| p.dispenses.get(j)))
    {
        obj.insert("supply".into(), "pharmacy".into());
        obj.insert("dispense".into(), d.evidence());
    }
    evidence
}

/// Per-rule counts for the manifest.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Tally {
    pub evaluated: u64,
    pub flagged: u64,
    pub not_evaluable: u64,
}

/// Runs every enabled rule on one patient.
pub fn evaluate(p: &Patient, ctx: &Ctx) -> (Vec<Finding>, Vec<Tally>) {
    let mut findings = Vec::new();
    let mut tallies = vec![Tally::default(); RULES.len()];
    for (k, tally) in tallies.iter_mut().enumerate() {
        if ctx.policy.severity_at(k).is_none() {
            continue;
        }
        let out = eval_of(k)(p, ctx);
        *tally = Tally { evaluated: out.evaluated, flagged: out.findings.len() as u64, not_evaluable: out.not_evaluable };
        findings.extend(out.findings);
    }
    (findings, tallies)
}

/// Formats units without a trailing `.0` for whole numbers.
pub use crate::model::codes::display_units as units;

#[cfg(test)]
mod catalogue_tests {
    #[test]
    fn rule_functions_follow_the_catalogue() {
        let ids: Vec<&str> = super::EVAL.iter().map(|e| e.0).collect();
        let cat: Vec<&str> = super::RULES.iter().map(|r| r.id).collect();
        assert_eq!(ids, cat);
    }
}

#[cfg(test)]
mod stake_tests;
#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod tests;
