//! Output files: the tables (`table`, written as Parquet by `write`), the
//! manifest (JSON), the summary (Markdown) and report.html. What reads or
//! writes Parquet needs the `parquet` feature; the rest serves the Python
//! package too.

mod atomic;
#[cfg(feature = "parquet")]
pub mod diff;
#[cfg(feature = "parquet")]
pub mod explain;
pub mod html;
#[cfg(feature = "parquet")]
pub mod parquet_io;
#[cfg(feature = "parquet")]
pub mod previous;
pub mod stake;
pub mod summary;
pub mod table;
mod target;
#[cfg(feature = "parquet")]
mod write;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::history::FindingRow;
use crate::ingest::{FileStats, RowCounts};
use crate::model::Date;
use crate::model::Severity;
use crate::pipeline::PharmacyCounts;
use crate::pipeline::{RunOptions, RunResult};
use crate::policy::Policy;
use crate::rules::RULES;

pub use atomic::{OutputLock, Staging};
pub use target::{check_file_out, check_out};
#[cfg(feature = "parquet")]
pub use write::write_all;

/// Everything about the run that is not in the data: ids and times.
pub struct RunInfo {
    pub run_id: String,
    pub started_at: String,
    pub finished_at: String,
    pub argv: Vec<String>,
}

/// Tonight's findings as output rows, with their lifecycle.
pub fn finding_rows(r: &RunResult, policy: &Policy) -> Vec<FindingRow> {
    finding_rows_in(r, policy, 0..r.findings.len())
}

/// The output rows of findings `range` (writers build them a batch at a
/// time: a row owns copies of the message and evidence).
pub fn finding_rows_in(r: &RunResult, policy: &Policy, range: std::ops::Range<usize>) -> Vec<FindingRow> {
    let rv = policy.rule_version();
    r.findings[range.clone()]
        .iter()
        .zip(range)
        .map(|(x, k)| FindingRow {
            finding_id: x.id.clone(),
            rule_id: x.rule_id.to_string(),
            category: x.category.to_string(),
            severity: x.severity.as_str().to_string(),
            person_id: x.person_id.to_string(),
            claim_id: x.claim_id.to_string(),
            claim_line_number: x.claim_line_number,
            service_date: x.service_date,
            hcpcs_code: x.hcpcs_code.to_string(),
            episode_id: x.episode_id.clone(),
            message: x.message.clone(),
            evidence: x.evidence.clone(),
            rule_version: rv.clone(),
            source_file: r.source_name(x.file),
            source_line: x.source_line as i64,
            units: x.units,
            paid_amount: x.paid_amount,
            allowed_amount: x.allowed_amount,
            amount_at_stake: x.at_stake,
            payer_program: x.payer_program.as_deref().map(str::to_string),
            rendering_npi: x.rendering_npi.as_deref().map(str::to_string),
            billing_npi: x.billing_npi.as_deref().map(str::to_string),
            status: if r.lifecycle.open.get(k).copied().unwrap_or(false) { "open" } else { "new" }.to_string(),
            first_seen: r.lifecycle.first_seen.get(k).copied().unwrap_or_default(),
        })
        .collect()
}

#[derive(Serialize)]
struct Manifest<'a> {
    run_id: &'a str,
    tool: ToolInfo,
    rule_catalogue_version: &'a str,
    policy: PolicyInfo<'a>,
    arguments: Arguments<'a>,
    started_at: &'a str,
    finished_at: &'a str,
    horizon: Option<crate::model::Date>,
    inputs: &'a [FileStats],
    totals: Totals,
    outputs: Vec<OutputInfo>,
    rules: Vec<RuleInfo>,
    pharmacy: &'a PharmacyCounts,
    /// The run date: findings' `first_seen` for new ones, `resolved_on`.
    run_date: Date,
    /// `--previous`: the run this one was reconciled with.
    previous: Option<PreviousInfo>,
    lifecycle: LifecycleCounts,
    findings_by_severity: BTreeMap<&'static str, u64>,
    timings_seconds: BTreeMap<&'static str, f64>,
    /// Present when kept rows passed `--memory-limit` and went to disk.
    #[serde(skip_serializing_if = "Option::is_none")]
    spill: Option<&'a crate::pipeline::SpillInfo>,
    /// The ICD-10-CM code set DX_CODE_INVALID judged against.
    code_set: CodeSetInfo<'a>,
}

#[derive(Serialize)]
struct CodeSetInfo<'a> {
    releases: &'a [crate::model::codeset::Release],
    first_date: Date,
    last_date: Date,
    sources: &'a [crate::model::codeset::Source],
}

#[derive(Serialize)]
struct ToolInfo {
    name: &'static str,
    version: &'static str,
    /// The rule catalogue version this build implements.
    catalogue_version: u32,
}

#[derive(Serialize)]
struct PreviousInfo {
    run_id: String,
    path: String,
}

#[derive(Serialize)]
struct LifecycleCounts {
    new: usize,
    open: usize,
    resolved: usize,
}

#[derive(Serialize)]
struct PolicyInfo<'a> {
    name: &'a str,
    version: &'a str,
    source: &'a str,
}

#[derive(Serialize)]
struct Arguments<'a> {
    argv: &'a [String],
    inputs: &'a [String],
    from: Option<crate::model::Date>,
    to: Option<crate::model::Date>,
    lookback_days: i32,
    read_from: Option<crate::model::Date>,
    policy: Option<String>,
    columns: Option<String>,
    threads: usize,
}

#[derive(Serialize, Default)]
pub struct Totals {
    pub files: usize,
    #[serde(flatten)]
    pub counts: RowCounts,
    pub persons: usize,
    pub episodes: usize,
    pub findings: usize,
    /// Money at stake over distinct claim lines: each line once, at the
    /// largest amount among its findings (not the sum over findings).
    pub amount_at_stake_distinct_lines: f64,
}

#[derive(Serialize)]
struct OutputInfo {
    path: String,
    rows: Option<usize>,
}

#[derive(Serialize)]
struct RuleInfo {
    rule_id: &'static str,
    category: &'static str,
    severity: Option<&'static str>,
    enabled: bool,
    evaluated: u64,
    flagged: u64,
    not_evaluable: u64,
    /// This rule's findings' money at stake, each finding counted (a line
    /// two rules flag is in both rules' subtotals).
    amount_at_stake: f64,
}

pub fn totals(r: &RunResult) -> Totals {
    let mut counts = RowCounts::default();
    for f in &r.files {
        counts.add(&f.counts);
    }
    Totals {
        files: r.files.len(),
        counts,
        persons: r.persons,
        episodes: r.episodes.len(),
        findings: r.findings.len(),
        amount_at_stake_distinct_lines: stake::run_total(&r.findings),
    }
}

/// manifest.json. `outputs` lists the files written beside it, with row
/// counts for tables.
pub fn manifest_json(
    opts: &RunOptions,
    policy: &Policy,
    r: &RunResult,
    info: &RunInfo,
    outputs: &[(&str, Option<usize>)],
) -> Result<Vec<u8>> {
    let mut by_sev: BTreeMap<&'static str, u64> = [("error", 0), ("warning", 0), ("info", 0)].into_iter().collect();
    for f in &r.findings {
        *by_sev.entry(f.severity.as_str()).or_default() += 1;
    }
    let mut by_rule: BTreeMap<&str, f64> = BTreeMap::new();
    for f in &r.findings {
        *by_rule.entry(f.rule_id).or_default() += f.at_stake.unwrap_or(0.0);
    }
    let rules = RULES
        .iter()
        .zip(&r.tallies)
        .map(|(d, t)| RuleInfo {
            rule_id: d.id,
            category: d.category,
            severity: policy.severity(d.id).map(Severity::as_str),
            enabled: policy.severity(d.id).is_some(),
            evaluated: t.evaluated,
            flagged: t.flagged,
            not_evaluable: t.not_evaluable,
            amount_at_stake: by_rule.get(d.id).copied().unwrap_or(0.0),
        })
        .collect();
    let manifest = Manifest {
        run_id: &info.run_id,
        tool: ToolInfo { name: "claims-audit", version: crate::VERSION, catalogue_version: crate::model::CATALOGUE_VERSION },
        rule_catalogue_version: &policy.file.policy.catalogue_version,
        policy: PolicyInfo { name: policy.name(), version: policy.version(), source: &policy.source },
        arguments: Arguments {
            argv: &info.argv,
            inputs: &opts.inputs,
            from: opts.from,
            to: opts.to,
            lookback_days: opts.lookback_days,
            read_from: opts.read_from(),
            policy: opts.policy_path.as_ref().map(|p| p.display().to_string()),
            columns: opts.columns_path.as_ref().map(|p| p.display().to_string()),
            threads: rayon::current_num_threads(),
        },
        started_at: &info.started_at,
        finished_at: &info.finished_at,
        horizon: r.horizon,
        inputs: &r.files,
        totals: totals(r),
        outputs: outputs.iter().map(|(p, rows)| OutputInfo { path: p.to_string(), rows: *rows }).collect(),
        rules,
        code_set: CodeSetInfo {
            releases: policy.codeset().releases(),
            first_date: policy.codeset().first_date(),
            last_date: policy.codeset().last_date(),
            sources: policy.codeset().sources(),
        },
        pharmacy: &r.pharmacy,
        run_date: opts.run_date,
        previous: r.lifecycle.previous_run_id.as_ref().map(|id| PreviousInfo {
            run_id: id.clone(),
            path: r.lifecycle.previous_dir.as_ref().map(|d| d.display().to_string()).unwrap_or_default(),
        }),
        lifecycle: LifecycleCounts { new: r.lifecycle.new_count(), open: r.lifecycle.open_count(), resolved: r.lifecycle.resolved.len() },
        findings_by_severity: by_sev,
        timings_seconds: [("read", r.read_seconds), ("evaluate", r.eval_seconds)].into_iter().collect(),
        spill: r.spill.as_ref(),
    };
    serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Internal(format!("manifest: {e}")))
}

/// A run id that depends only on what was audited: tool version, policy,
/// arguments and each input's path, size and modification time. Re-running
/// the same audit gives the same id, so outputs stay byte-identical.
pub fn run_id(opts: &RunOptions, policy: &Policy, r: &RunResult) -> String {
    let mut key = format!("{}|{:x}|{:?}|{:?}|{}|", crate::VERSION, policy.fingerprint, opts.from, opts.to, opts.lookback_days);
    // Statuses and dates depend on these too.
    key.push_str(&format!("{}|{:?}|", opts.run_date, r.lifecycle.previous_run_id));
    for i in &r.inputs {
        let mtime = std::fs::metadata(&i.path).and_then(|m| m.modified()).ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
        key.push_str(&format!("{}|{}|{:?}|", i.path.display(), i.bytes, mtime.map(|d| d.as_nanos())));
    }
    format!("{:016x}", crate::util::fnv1a(key.as_bytes()))
}
