//! Output files: findings, episodes and rejects as Parquet (written with
//! polars), the manifest (JSON) and the summary (Markdown).

mod atomic;
pub mod diff;
pub mod explain;
pub mod html;
pub mod previous;
mod summary;

use std::collections::BTreeMap;

use polars::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::history::FindingRow;
use crate::ingest::FileStats;
use crate::model::Date;
use crate::model::Severity;
use crate::pipeline::PharmacyCounts;
use crate::pipeline::{RunOptions, RunResult};
use crate::policy::Policy;
use crate::rules::RULES;

pub use atomic::{OutputLock, Staging};

/// Everything about the run that is not in the data: ids and times.
pub struct RunInfo {
    pub run_id: String,
    pub started_at: String,
    pub finished_at: String,
    pub argv: Vec<String>,
}

fn date_col(name: &str, v: Vec<Option<i32>>) -> PolarsResult<Column> {
    Column::new(name.into(), v).cast(&DataType::Date)
}

/// Tonight's findings as output rows, with their lifecycle.
pub fn finding_rows(r: &RunResult, policy: &Policy) -> Vec<FindingRow> {
    let rv = policy.rule_version();
    let src = |i: u32| r.inputs.get(i as usize).map(|x| x.path.display().to_string()).unwrap_or_default();
    r.findings
        .iter()
        .enumerate()
        .map(|(k, x)| FindingRow {
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
            source_file: src(x.file),
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

/// The columns of findings.parquet, for any rows of it (tonight's, resolved
/// ones, a diff's).
pub(crate) fn finding_columns(run_id: &str, f: &[&FindingRow]) -> PolarsResult<Vec<Column>> {
    Ok(vec![
        Column::new("run_id".into(), vec![run_id; f.len()]),
        Column::new("finding_id".into(), f.iter().map(|x| x.finding_id.as_str()).collect::<Vec<_>>()),
        Column::new("status".into(), f.iter().map(|x| x.status.as_str()).collect::<Vec<_>>()),
        date_col("first_seen", f.iter().map(|x| Some(x.first_seen.0)).collect())?,
        Column::new("rule_id".into(), f.iter().map(|x| x.rule_id.as_str()).collect::<Vec<_>>()),
        Column::new("category".into(), f.iter().map(|x| x.category.as_str()).collect::<Vec<_>>()),
        Column::new("severity".into(), f.iter().map(|x| x.severity.as_str()).collect::<Vec<_>>()),
        Column::new("person_id".into(), f.iter().map(|x| x.person_id.as_str()).collect::<Vec<_>>()),
        Column::new("claim_id".into(), f.iter().map(|x| x.claim_id.as_str()).collect::<Vec<_>>()),
        Column::new("claim_line_number".into(), f.iter().map(|x| x.claim_line_number).collect::<Vec<_>>()),
        date_col("service_date", f.iter().map(|x| Some(x.service_date.0)).collect())?,
        Column::new("hcpcs_code".into(), f.iter().map(|x| x.hcpcs_code.as_str()).collect::<Vec<_>>()),
        Column::new("episode_id".into(), f.iter().map(|x| x.episode_id.as_deref()).collect::<Vec<_>>()),
        Column::new("message".into(), f.iter().map(|x| x.message.as_str()).collect::<Vec<_>>()),
        Column::new("evidence".into(), f.iter().map(|x| x.evidence.as_str()).collect::<Vec<_>>()),
        Column::new("rule_version".into(), f.iter().map(|x| x.rule_version.as_str()).collect::<Vec<_>>()),
        Column::new("source_file".into(), f.iter().map(|x| x.source_file.as_str()).collect::<Vec<_>>()),
        Column::new("source_line".into(), f.iter().map(|x| x.source_line).collect::<Vec<_>>()),
        Column::new("units".into(), f.iter().map(|x| x.units).collect::<Vec<_>>()),
        Column::new("paid_amount".into(), f.iter().map(|x| x.paid_amount).collect::<Vec<_>>()),
        Column::new("allowed_amount".into(), f.iter().map(|x| x.allowed_amount).collect::<Vec<_>>()),
        Column::new("amount_at_stake".into(), f.iter().map(|x| x.amount_at_stake).collect::<Vec<_>>()),
        Column::new("payer_program".into(), f.iter().map(|x| x.payer_program.as_deref()).collect::<Vec<_>>()),
        Column::new("rendering_npi".into(), f.iter().map(|x| x.rendering_npi.as_deref()).collect::<Vec<_>>()),
        Column::new("billing_npi".into(), f.iter().map(|x| x.billing_npi.as_deref()).collect::<Vec<_>>()),
    ])
}

fn findings_frame(rows: &[FindingRow], run_id: &str) -> PolarsResult<DataFrame> {
    DataFrame::new_infer_height(finding_columns(run_id, &rows.iter().collect::<Vec<_>>())?)
}

/// resolved.parquet: the previous run's findings this run no longer makes.
fn resolved_frame(r: &RunResult, run_id: &str, run_date: Date) -> PolarsResult<DataFrame> {
    let res = &r.lifecycle.resolved;
    let rows: Vec<&FindingRow> = res.iter().map(|x| &x.row).collect();
    let mut cols = finding_columns(run_id, &rows)?;
    cols.push(Column::new("resolved_reason".into(), res.iter().map(|x| x.reason.as_str()).collect::<Vec<_>>()));
    cols.push(date_col("resolved_on", vec![Some(run_date.0); res.len()])?);
    DataFrame::new_infer_height(cols)
}

fn episodes_frame(r: &RunResult) -> PolarsResult<DataFrame> {
    let e = &r.episodes;
    DataFrame::new_infer_height(vec![
        Column::new("episode_id".into(), e.iter().map(|x| x.episode_id.as_str()).collect::<Vec<_>>()),
        Column::new("person_id".into(), e.iter().map(|x| x.person_id.as_str()).collect::<Vec<_>>()),
        date_col("administration_date", e.iter().map(|x| Some(x.administration_date.0)).collect())?,
        Column::new("drug_code".into(), e.iter().map(|x| x.drug_code.as_str()).collect::<Vec<_>>()),
        Column::new("dose_units".into(), e.iter().map(|x| x.dose_units).collect::<Vec<_>>()),
        Column::new("dose_sequence".into(), e.iter().map(|x| x.dose_sequence as i32).collect::<Vec<_>>()),
        Column::new("phase".into(), e.iter().map(|x| x.phase).collect::<Vec<_>>()),
        Column::new("days_since_previous".into(), e.iter().map(|x| x.days_since_previous).collect::<Vec<_>>()),
        date_col("previous_administration_date", e.iter().map(|x| x.previous_administration_date.map(|d| d.0)).collect())?,
        Column::new("line_count".into(), e.iter().map(|x| x.line_count as i32).collect::<Vec<_>>()),
        Column::new("claim_ids".into(), e.iter().map(|x| x.claim_ids.as_str()).collect::<Vec<_>>()),
        Column::new("finding_count".into(), e.iter().map(|x| x.finding_count as i32).collect::<Vec<_>>()),
        Column::new("max_severity".into(), e.iter().map(|x| x.max_severity.map(Severity::as_str)).collect::<Vec<_>>()),
        Column::new("supply".into(), e.iter().map(|x| x.supply).collect::<Vec<_>>()),
        Column::new("dispense_claim_id".into(), e.iter().map(|x| x.dispense_claim_id.as_deref()).collect::<Vec<_>>()),
    ])
}

/// timeline.parquet: every home-infusion line (per diem, nursing) of an
/// audited person, active after reversals.
fn timeline_frame(r: &RunResult, policy: &Policy) -> PolarsResult<DataFrame> {
    let t = &r.timeline;
    let episode =
        |x: &crate::pipeline::TimelineLine| x.episode.map(|(d, fam)| crate::episodes::episode_id(&x.person_id, d, policy.family_name(fam)));
    DataFrame::new_infer_height(vec![
        Column::new("person_id".into(), t.iter().map(|x| x.person_id.as_str()).collect::<Vec<_>>()),
        date_col("service_date", t.iter().map(|x| Some(x.service_date.0)).collect())?,
        date_col("end_date", t.iter().map(|x| x.end_date.map(|d| d.0)).collect())?,
        Column::new("hcpcs_code".into(), t.iter().map(|x| x.hcpcs_code.as_str()).collect::<Vec<_>>()),
        Column::new("units".into(), t.iter().map(|x| x.units).collect::<Vec<_>>()),
        Column::new("role".into(), t.iter().map(|x| x.role).collect::<Vec<_>>()),
        Column::new("claim_id".into(), t.iter().map(|x| x.claim_id.as_str()).collect::<Vec<_>>()),
        Column::new("claim_line_number".into(), t.iter().map(|x| x.claim_line_number).collect::<Vec<_>>()),
        Column::new("episode_id".into(), t.iter().map(episode).collect::<Vec<_>>()),
    ])
}

fn rejects_frame(r: &RunResult) -> PolarsResult<DataFrame> {
    let j = &r.rejects;
    let src = |i: u32| r.inputs.get(i as usize).map(|x| x.path.display().to_string()).unwrap_or_default();
    DataFrame::new_infer_height(vec![
        Column::new("source_file".into(), j.iter().map(|x| src(x.file)).collect::<Vec<_>>()),
        Column::new("source_line".into(), j.iter().map(|x| x.source_line as i64).collect::<Vec<_>>()),
        Column::new("reason_code".into(), j.iter().map(|x| x.code).collect::<Vec<_>>()),
        Column::new("reason".into(), j.iter().map(|x| x.reason.as_str()).collect::<Vec<_>>()),
        Column::new("raw_text".into(), j.iter().map(|x| x.raw_text.as_str()).collect::<Vec<_>>()),
    ])
}

fn write_parquet(st: &Staging, name: &str, df: PolarsResult<DataFrame>) -> Result<usize> {
    let t0 = std::time::Instant::now();
    let path = st.dir.join(name);
    let mut df = df.map_err(|e| Error::Internal(format!("building {name}: {e}")))?;
    let file = st.create(name)?;
    ParquetWriter::new(&file)
        .with_compression(ParquetCompression::Zstd(None))
        .finish(&mut df)
        .map_err(|e| Error::output(&path, format!("write failed: {e}")))?;
    file.sync_all().map_err(|e| Error::output(&path, format!("sync failed: {e}")))?;
    tracing::debug!(file = name, rows = df.height(), seconds = t0.elapsed().as_secs_f64(), "written");
    Ok(df.height())
}

/// Writes one Parquet file outside a run's directory (the `diff` output):
/// owner-only, complete or absent.
pub(crate) fn write_private_parquet(path: &std::path::Path, df: &mut DataFrame) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| Error::output(path, format!("cannot create: {e}")))?;
    let written = ParquetWriter::new(&file)
        .with_compression(ParquetCompression::Zstd(None))
        .finish(df)
        .map_err(|e| e.to_string())
        .and_then(|_| file.sync_all().map_err(|e| e.to_string()))
        .and_then(|_| std::fs::rename(&tmp, path).map_err(|e| e.to_string()));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::output(path, format!("write failed: {e}")));
    }
    Ok(())
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
    pub rows_read: u64,
    pub rows_accepted: u64,
    pub rows_rejected: u64,
    pub rows_in_scope: u64,
    pub rows_kept: u64,
    pub rows_without_hcpcs: u64,
    pub rows_uncoded_drug: u64,
    pub persons: usize,
    pub episodes: usize,
    pub findings: usize,
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
}

pub fn totals(r: &RunResult) -> Totals {
    let mut sum = FileStats::default();
    for f in &r.files {
        sum.add_counts(f);
    }
    Totals {
        files: r.files.len(),
        rows_read: sum.rows_read,
        rows_accepted: sum.rows_accepted,
        rows_rejected: sum.rows_rejected,
        rows_in_scope: sum.rows_in_scope,
        rows_kept: sum.rows_kept,
        rows_without_hcpcs: sum.rows_without_hcpcs,
        rows_uncoded_drug: sum.rows_uncoded_drug,
        persons: r.persons,
        episodes: r.episodes.len(),
        findings: r.findings.len(),
    }
}

/// Writes every output into a staging directory and moves it into place.
pub fn write_all(opts: &RunOptions, policy: &Policy, r: &RunResult, info: &mut RunInfo, bar: &indicatif::ProgressBar) -> Result<()> {
    let st = Staging::new(&opts.out)?;
    // The Parquet files are independent: the timeline (the largest) is
    // written on a second thread while the others are written here.
    let (timeline, rest) = std::thread::scope(|scope| {
        let timeline = scope.spawn(|| write_parquet(&st, "timeline.parquet", timeline_frame(r, policy)));
        let rest = (|| -> Result<(usize, usize, usize, usize)> {
            let rows = finding_rows(r, policy);
            let n_findings = write_parquet(&st, "findings.parquet", findings_frame(&rows, &info.run_id))?;
            crate::signals::check()?;
            bar.inc(1);
            let n_resolved = write_parquet(&st, "resolved.parquet", resolved_frame(r, &info.run_id, opts.run_date))?;
            let n_episodes = write_parquet(&st, "episodes.parquet", episodes_frame(r))?;
            crate::signals::check()?;
            bar.inc(1);
            let n_rejects = write_parquet(&st, "rejects.parquet", rejects_frame(r))?;
            crate::signals::check()?;
            bar.inc(1);
            Ok((n_findings, n_resolved, n_episodes, n_rejects))
        })();
        (timeline.join().unwrap_or_else(|_| Err(Error::Internal("timeline writer panicked".into()))), rest)
    });
    let n_timeline = timeline?;
    let (n_findings, n_resolved, n_episodes, n_rejects) = rest?;
    let mut by_sev: BTreeMap<&'static str, u64> = [("error", 0), ("warning", 0), ("info", 0)].into_iter().collect();
    for f in &r.findings {
        *by_sev.entry(f.severity.as_str()).or_default() += 1;
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
        })
        .collect();
    info.finished_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
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
        outputs: vec![
            OutputInfo { path: "findings.parquet".into(), rows: Some(n_findings) },
            OutputInfo { path: "episodes.parquet".into(), rows: Some(n_episodes) },
            OutputInfo { path: "rejects.parquet".into(), rows: Some(n_rejects) },
            OutputInfo { path: "resolved.parquet".into(), rows: Some(n_resolved) },
            OutputInfo { path: "timeline.parquet".into(), rows: Some(n_timeline) },
            OutputInfo { path: "report.html".into(), rows: None },
            OutputInfo { path: "summary.md".into(), rows: None },
            OutputInfo { path: "_SUCCESS".into(), rows: None },
        ],
        rules,
        pharmacy: &r.pharmacy,
        run_date: opts.run_date,
        previous: r.lifecycle.previous_run_id.as_ref().map(|id| PreviousInfo {
            run_id: id.clone(),
            path: r.lifecycle.previous_dir.as_ref().map(|d| d.display().to_string()).unwrap_or_default(),
        }),
        lifecycle: LifecycleCounts { new: r.lifecycle.new_count(), open: r.lifecycle.open_count(), resolved: r.lifecycle.resolved.len() },
        findings_by_severity: by_sev,
        timings_seconds: [("read", r.read_seconds), ("evaluate", r.eval_seconds)].into_iter().collect(),
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Internal(format!("manifest: {e}")))?;
    st.write("manifest.json", &json)?;
    st.write("summary.md", summary::render(opts, policy, r, &info.run_id).as_bytes())?;
    let t_report = std::time::Instant::now();
    st.write("report.html", html::render(opts, policy, r, &info.run_id)?.as_bytes())?;
    tracing::debug!(seconds = t_report.elapsed().as_secs_f64(), "report.html");
    bar.inc(1);
    crate::signals::check()?;
    st.commit()
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
