//! From one night to the next: which of tonight's findings are new and which
//! were open already, and which of last night's findings tonight no longer
//! makes, and why (OUTPUTS.md, "From one night to the next"). Pure: the
//! previous run is read by `report::previous`.

use std::path::PathBuf;

use crate::model::{Date, Line, Text};
use crate::policy::Policy;
use crate::rules::Finding;
use crate::util::{FastMap, FastSet};

/// One row of findings.parquet, owned: tonight's findings as written, and a
/// previous run's as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct FindingRow {
    pub finding_id: String,
    pub rule_id: String,
    pub category: String,
    pub severity: String,
    pub person_id: String,
    pub claim_id: String,
    pub claim_line_number: i64,
    pub service_date: Date,
    pub hcpcs_code: String,
    pub episode_id: Option<String>,
    pub message: String,
    pub evidence: String,
    pub rule_version: String,
    pub source_file: String,
    pub source_line: i64,
    pub units: f64,
    pub paid_amount: Option<f64>,
    pub allowed_amount: Option<f64>,
    pub amount_at_stake: Option<f64>,
    pub payer_program: Option<String>,
    pub rendering_npi: Option<String>,
    pub billing_npi: Option<String>,
    /// `new` or `open`.
    pub status: String,
    /// Run date on which the finding was first made.
    pub first_seen: Date,
}

/// An earlier complete output directory, as `--previous` names it.
#[derive(Debug, Clone)]
pub struct PreviousRun {
    pub dir: PathBuf,
    pub run_id: String,
    pub run_date: Date,
    pub findings: Vec<FindingRow>,
}

/// A claim line as findings name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LineKey {
    pub person_id: Text,
    pub claim_id: Text,
    pub claim_line_number: i64,
}

impl LineKey {
    pub fn of(l: &Line) -> LineKey {
        LineKey { person_id: l.person_id.clone(), claim_id: l.claim_id.clone(), claim_line_number: l.claim_line_number }
    }

    pub fn of_row(f: &FindingRow) -> LineKey {
        LineKey { person_id: Text::new(&f.person_id), claim_id: Text::new(&f.claim_id), claim_line_number: f.claim_line_number }
    }
}

/// Why a previous finding is not made tonight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ResolvedReason {
    /// The flagged line is netted out by a reversal.
    LineReversed,
    /// The flagged line is not in tonight's input.
    LineAbsent,
    /// The rule is switched off in tonight's policy.
    RuleDisabled,
    /// Anything else: a corrected diagnosis, a rebilled dose, a changed rule.
    NoLongerFlagged,
}

impl ResolvedReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ResolvedReason::LineReversed => "line_reversed",
            ResolvedReason::LineAbsent => "line_absent",
            ResolvedReason::RuleDisabled => "rule_disabled",
            ResolvedReason::NoLongerFlagged => "no_longer_flagged",
        }
    }
}

/// A finding of the previous run that tonight no longer makes.
#[derive(Debug, Clone)]
pub struct ResolvedFinding {
    pub row: FindingRow,
    pub reason: ResolvedReason,
}

/// Status of tonight's findings and what was resolved since the previous run.
#[derive(Debug, Default)]
pub struct Lifecycle {
    /// Per finding, in findings order: open (made by the previous run too).
    pub open: Vec<bool>,
    /// Per finding: the run date it was first made.
    pub first_seen: Vec<Date>,
    pub resolved: Vec<ResolvedFinding>,
    pub previous_run_id: Option<String>,
    pub previous_dir: Option<PathBuf>,
}

impl Lifecycle {
    pub fn new_count(&self) -> usize {
        self.open.iter().filter(|o| !**o).count()
    }

    pub fn open_count(&self) -> usize {
        self.open.iter().filter(|o| **o).count()
    }
}

/// The previous findings, inside this run's range, that this run does not make.
pub fn resolved_candidates<'p>(prev: &'p PreviousRun, findings: &[Finding], in_range: impl Fn(Date) -> bool) -> Vec<&'p FindingRow> {
    let current: FastSet<&str> = findings.iter().map(|f| f.id.as_str()).collect();
    prev.findings.iter().filter(|f| in_range(f.service_date) && !current.contains(f.finding_id.as_str())).collect()
}

/// Tonight's findings against the previous run's. `present` holds the line
/// keys of the candidates that tonight's input has; `voided` the lines a
/// reversal netted out.
pub fn reconcile(
    prev: Option<&PreviousRun>,
    findings: &[Finding],
    candidates: &[&FindingRow],
    present: &FastSet<LineKey>,
    voided: &FastSet<LineKey>,
    policy: &Policy,
    run_date: Date,
) -> Lifecycle {
    let Some(prev) = prev else {
        return Lifecycle { open: vec![false; findings.len()], first_seen: vec![run_date; findings.len()], ..Default::default() };
    };
    let seen: FastMap<&str, Date> = prev.findings.iter().map(|f| (f.finding_id.as_str(), f.first_seen)).collect();
    let mut open = Vec::with_capacity(findings.len());
    let mut first_seen = Vec::with_capacity(findings.len());
    for f in findings {
        let before = seen.get(f.id.as_str()).copied();
        open.push(before.is_some());
        first_seen.push(before.unwrap_or(run_date));
    }
    let mut resolved: Vec<ResolvedFinding> = candidates
        .iter()
        .map(|f| {
            let key = LineKey::of_row(f);
            let reason = if policy.severity(&f.rule_id).is_none() {
                ResolvedReason::RuleDisabled
            } else if voided.contains(&key) {
                ResolvedReason::LineReversed
            } else if !present.contains(&key) {
                ResolvedReason::LineAbsent
            } else {
                ResolvedReason::NoLongerFlagged
            };
            ResolvedFinding { row: (*f).clone(), reason }
        })
        .collect();
    resolved.sort_by(|a, b| {
        (&a.row.person_id, a.row.service_date, &a.row.rule_id, &a.row.claim_id, a.row.claim_line_number).cmp(&(
            &b.row.person_id,
            b.row.service_date,
            &b.row.rule_id,
            &b.row.claim_id,
            b.row.claim_line_number,
        ))
    });
    Lifecycle { open, first_seen, resolved, previous_run_id: Some(prev.run_id.clone()), previous_dir: Some(prev.dir.clone()) }
}
