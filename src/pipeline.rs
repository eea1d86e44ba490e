//! The run: read every input, group lines by person, evaluate patients in
//! parallel, and hand the results to `report`.

use std::path::PathBuf;
use std::time::Instant;

use rayon::prelude::*;

use crate::columns::ColumnMap;
use crate::date::Date;
use crate::episodes::{Patient, build_patient, net_reversals};
use crate::error::{Error, Result};
use crate::ingest::{CsvEngine, FileStats, InputFile, RejectRow, ScanSpec, expand_inputs, raw_text, read_file};
use crate::normalize::Line;
use crate::policy::Policy;
use crate::progress::Progress;
use crate::rules::{Ctx, Finding, RULES, Severity, Tally, evaluate};

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub inputs: Vec<String>,
    pub out: PathBuf,
    pub from: Option<Date>,
    pub to: Option<Date>,
    pub lookback_days: i32,
    pub delimiter: u8,
    pub engine: CsvEngine,
    pub quiet: bool,
    pub scan_only: bool,
    pub policy_path: Option<PathBuf>,
    pub columns_path: Option<PathBuf>,
    pub threads: Option<usize>,
}

/// One episode row of episodes.parquet.
#[derive(Debug, Clone)]
pub struct EpisodeRow {
    pub episode_id: String,
    pub person_id: String,
    pub administration_date: Date,
    pub drug_code: String,
    pub dose_units: f64,
    pub dose_sequence: u32,
    pub phase: &'static str,
    pub days_since_previous: Option<i32>,
    pub previous_administration_date: Option<Date>,
    pub line_count: u32,
    pub claim_ids: String,
    pub finding_count: u32,
    pub max_severity: Option<Severity>,
}

pub struct RunResult {
    pub files: Vec<FileStats>,
    pub inputs: Vec<InputFile>,
    pub findings: Vec<Finding>,
    pub episodes: Vec<EpisodeRow>,
    pub rejects: Vec<RejectRow>,
    pub tallies: Vec<Tally>,
    pub horizon: Option<Date>,
    pub persons: usize,
    pub lines_kept: usize,
    pub read_seconds: f64,
    pub eval_seconds: f64,
}

impl RunOptions {
    /// Lower bound of what is read: `--from` minus the lookback.
    pub fn read_from(&self) -> Option<Date> {
        self.from.map(|f| f.add_days(-self.lookback_days))
    }
}

pub fn audit(opts: &RunOptions, policy: &Policy, columns: &ColumnMap, progress: &Progress) -> Result<RunResult> {
    if let (Some(f), Some(t)) = (opts.from, opts.to)
        && f > t
    {
        return Err(Error::Config(format!("--from {f} is after --to {t}")));
    }
    let inputs = expand_inputs(&opts.inputs)?;
    let spec = ScanSpec {
        policy,
        columns,
        lo: opts.read_from(),
        hi: opts.to,
        delimiter: opts.delimiter,
        engine: opts.engine,
        scan_only: opts.scan_only,
    };
    let t0 = Instant::now();
    let total_bytes: u64 = inputs.iter().map(|i| i.bytes).sum();
    let bar = progress.bar("read", total_bytes);
    let mut files = Vec::with_capacity(inputs.len());
    let mut chunks: Vec<Vec<Line>> = Vec::new();
    let mut rejects: Vec<RejectRow> = Vec::new();
    for (k, input) in inputs.iter().enumerate() {
        let before = bar.position();
        let mut out = read_file(input, k as u32, &spec, &|n| bar.inc(n))?;
        bar.set_position(before + input.bytes);
        tracing::info!(file = %input.path.display(), rows_read = out.stats.rows_read, rows_rejected = out.stats.rows_rejected, "read");
        files.push(std::mem::take(&mut out.stats));
        rejects.append(&mut out.rejects);
        chunks.extend(out.into_chunks());
    }
    bar.finish_and_clear();
    let read_seconds = t0.elapsed().as_secs_f64();

    let t1 = Instant::now();
    let horizon = opts.to.or_else(|| chunks.iter().flatten().map(|l| l.service_date).max());
    let (sorted, groups) = split_by_person(&chunks);
    let lines_kept = sorted.len();
    let persons = groups.len();
    tracing::debug!(seconds = t1.elapsed().as_secs_f64(), persons, "grouped by person");
    let ctx = Ctx { policy, from: opts.from, to: opts.to, horizon: horizon.unwrap_or_default() };
    let bar = progress.bar("evaluate", persons as u64);
    let results: Vec<PatientResult> = groups
        .into_par_iter()
        .map(|(a, b)| {
            let r = evaluate_patient(&sorted[a..b], &ctx);
            bar.inc(1);
            r
        })
        .collect();
    bar.finish_and_clear();
    tracing::debug!(seconds = t1.elapsed().as_secs_f64(), "evaluated");

    let mut findings = Vec::new();
    let mut episodes = Vec::new();
    let mut tallies = vec![Tally::default(); RULES.len()];
    for r in results {
        findings.extend(r.findings);
        episodes.extend(r.episodes);
        for (t, p) in tallies.iter_mut().zip(r.tallies) {
            t.evaluated += p.evaluated;
            t.flagged += p.flagged;
            t.not_evaluable += p.not_evaluable;
        }
        for (file, reject) in r.unmatched {
            let f = &mut files[file as usize];
            f.rows_accepted -= 1;
            f.rows_rejected += 1;
            f.rows_kept -= 1;
            f.rows_in_scope -= 1;
            rejects.push(reject);
        }
    }
    findings.par_sort_unstable_by(|a, b| {
        (&a.person_id, a.service_date, a.rule_id, &a.claim_id, a.claim_line_number, a.file, a.source_line).cmp(&(
            &b.person_id,
            b.service_date,
            b.rule_id,
            &b.claim_id,
            b.claim_line_number,
            b.file,
            b.source_line,
        ))
    });
    episodes
        .sort_by(|a, b| (&a.person_id, a.administration_date, &a.episode_id).cmp(&(&b.person_id, b.administration_date, &b.episode_id)));
    rejects.sort_by(|a, b| (a.file, a.source_line, a.code).cmp(&(b.file, b.source_line, b.code)));
    tracing::debug!(seconds = t1.elapsed().as_secs_f64(), "merged and sorted");
    Ok(RunResult {
        files,
        inputs,
        findings,
        episodes,
        rejects,
        tallies,
        horizon,
        persons,
        lines_kept,
        read_seconds,
        eval_seconds: t1.elapsed().as_secs_f64(),
    })
}

/// Groups lines by person: the lines in person order, and each person's
/// range in it. Sorts references, never the (large) lines.
fn split_by_person(chunks: &[Vec<Line>]) -> (Vec<&Line>, Vec<(usize, usize)>) {
    // Sort compact keys (the id's first 16 bytes and its length) so most
    // comparisons never chase a pointer to the id's bytes.
    let key = |s: &str| -> (u128, usize) {
        let mut b = [0u8; 16];
        let n = s.len().min(16);
        b[..n].copy_from_slice(&s.as_bytes()[..n]);
        (u128::from_be_bytes(b), s.len())
    };
    let mut idx: Vec<((u128, usize), &Line)> = chunks.iter().flatten().map(|l| (key(&l.person_id), l)).collect();
    idx.par_sort_unstable_by(|a, b| {
        a.0.cmp(&b.0).then_with(|| if a.0.1 <= 16 { std::cmp::Ordering::Equal } else { a.1.person_id.cmp(&b.1.person_id) })
    });
    let sorted: Vec<&Line> = idx.into_iter().map(|(_, l)| l).collect();
    let mut groups = Vec::new();
    let mut start = 0;
    for i in 1..=sorted.len() {
        if i == sorted.len() || sorted[i].person_id != sorted[start].person_id {
            groups.push((start, i));
            start = i;
        }
    }
    (sorted, groups)
}

struct PatientResult {
    findings: Vec<Finding>,
    episodes: Vec<EpisodeRow>,
    tallies: Vec<Tally>,
    /// Reversals that reverse nothing: (file, reject row).
    unmatched: Vec<(u32, RejectRow)>,
}

fn evaluate_patient(lines: &[&Line], ctx: &Ctx) -> PatientResult {
    // Without a policy-code line no rule has an item: only J-codes outside
    // the policy (kept as drug days for PER_DIEM_WITHOUT_DRUG). Skip the work.
    if !lines.iter().any(|l| ctx.policy.policy_codes.contains(l.hcpcs.as_str())) {
        let unmatched = if lines.iter().all(|l| l.units >= 0.0) { Vec::new() } else { net_reversals(lines.to_vec()).1.0 };
        return PatientResult {
            findings: Vec::new(),
            episodes: Vec::new(),
            tallies: vec![Tally::default(); RULES.len()],
            unmatched: unmatched_rejects(&unmatched),
        };
    }
    let person = lines[0].person_id.clone();
    let (active, unmatched) = net_reversals(lines.to_vec());
    let patient = build_patient(person, active, ctx.policy);
    let (findings, tallies) = evaluate(&patient, ctx);
    let episodes = episode_rows(&patient, &findings, ctx);
    PatientResult { findings, episodes, tallies, unmatched: unmatched_rejects(&unmatched.0) }
}

fn unmatched_rejects(lines: &[&Line]) -> Vec<(u32, RejectRow)> {
    lines
        .iter()
        .map(|l| {
            let reject = RejectRow {
                file: l.file,
                source_line: l.source_line,
                code: "reversal_unmatched",
                reason: format!(
                    "reversal of {} units of {} on {} matches no earlier line of the same person, date, code and units",
                    crate::rules::units(-l.units),
                    l.hcpcs,
                    l.service_date
                ),
                raw_text: l.raw.as_deref().map(|r| raw_text(r.as_bytes())).unwrap_or_default(),
            };
            (l.file, reject)
        })
        .collect()
}

fn episode_rows(p: &Patient, findings: &[Finding], ctx: &Ctx) -> Vec<EpisodeRow> {
    p.admins
        .iter()
        .filter(|a| ctx.in_range(a.date))
        .map(|a| {
            let mine: Vec<&Finding> = findings.iter().filter(|f| f.episode_id.as_deref() == Some(a.episode_id.as_str())).collect();
            let mut claims: Vec<&str> = a.line_idx.iter().map(|&i| p.lines[i].claim_id.as_str()).collect();
            claims.sort();
            claims.dedup();
            EpisodeRow {
                episode_id: a.episode_id.clone(),
                person_id: p.person_id.to_string(),
                administration_date: a.date,
                drug_code: a.drug.clone(),
                dose_units: a.dose,
                dose_sequence: a.sequence,
                phase: a.phase.as_str(),
                days_since_previous: a.days_since_previous(),
                previous_administration_date: a.previous,
                line_count: a.line_idx.len() as u32,
                claim_ids: claims.join(","),
                finding_count: mine.len() as u32,
                max_severity: mine.iter().map(|f| f.severity).max(),
            }
        })
        .collect()
}
