//! The run: read every input, group lines by person, evaluate patients in
//! parallel, and hand the results to `report`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use rayon::prelude::*;

use serde::{Deserialize, Serialize};

use crate::columns::{ColumnMap, FileKind};
use crate::duplicates::drop_repeats;
use crate::episodes::{DispenseUse, Patient, PharmacySide, Reversible, build_patient, net_reversals};
use crate::error::{Error, Result};
use crate::history::{Lifecycle, LineKey, PreviousRun, reconcile, resolved_candidates};
use crate::ingest::{Engine, FileOutput, FileStats, InputFile, RejectLimit, RejectRow, ScanSpec, expand_inputs, raw_text, read_file};
use crate::model::text::{PrefixKey, prefix_key};
use crate::model::{Date, Dispense, Line, Text, UncodedDrugDay};
use crate::policy::Policy;
use crate::progress::Progress;
pub use crate::results::{EpisodeRow, TimelineLine};
use crate::rules::{Ctx, Finding, RULES, Tally, evaluate};
use crate::scratch::PrivateDir;
use crate::signals;
use crate::spill::{Batch, Held, KeptStore, Record, Spool};
use crate::util::FastSet;

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub inputs: Vec<String>,
    pub out: PathBuf,
    pub from: Option<Date>,
    pub to: Option<Date>,
    pub lookback_days: i32,
    /// `--delimiter`; None: each CSV's own, sniffed from its header.
    pub delimiter: Option<u8>,
    pub engine: Engine,
    pub quiet: bool,
    pub scan_only: bool,
    pub policy_path: Option<PathBuf>,
    pub columns_path: Option<PathBuf>,
    pub threads: Option<usize>,
    /// The date findings are first seen and resolved on (today, UTC).
    pub run_date: Date,
    /// `--previous DIR`, for the manifest.
    pub previous: Option<PathBuf>,
    /// Bytes kept rows may use in memory before they spill to disk
    /// (`--memory-limit`); `None`: never spill.
    pub memory_limit: Option<u64>,
    /// `--max-reject-rate`, `--min-rejects`: a file past it stops the run.
    pub reject_limit: RejectLimit,
}

pub struct RunResult {
    pub files: Vec<FileStats>,
    pub inputs: Vec<InputFile>,
    pub findings: Vec<Finding>,
    /// In output order (by person, date); on disk when the run spilled.
    pub episodes: Spool<EpisodeRow>,
    pub rejects: Vec<RejectRow>,
    pub tallies: Vec<Tally>,
    pub pharmacy: PharmacyCounts,
    pub lifecycle: Lifecycle,
    /// Home-infusion lines of audited persons, by person (each person's in
    /// the order evaluation gave them); on disk when the run spilled.
    pub timeline: Spool<TimelineLine>,
    pub horizon: Option<Date>,
    pub persons: usize,
    pub lines_kept: usize,
    pub read_seconds: f64,
    pub eval_seconds: f64,
    /// Set when kept rows passed `--memory-limit` and were spilled.
    pub spill: Option<SpillInfo>,
}

/// How a run that passed its memory limit used the disk (manifest `spill`).
#[derive(Debug, Clone, Serialize)]
pub struct SpillInfo {
    pub memory_limit_bytes: u64,
    pub rows: u64,
    pub bytes_written: u64,
    pub partitions: usize,
    /// Groups of partitions audited one after another.
    pub groups: usize,
}

impl RunResult {
    /// The name of input file `i` in outputs (`source_file`).
    pub fn source_name(&self, i: u32) -> String {
        self.inputs.get(i as usize).map(|x| x.path.display().to_string()).unwrap_or_default()
    }
}

/// What became of the run's dispenses (manifest `pharmacy`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PharmacyCounts {
    /// Net dispenses of policy drugs (person, date, drug).
    pub dispenses: u64,
    /// Matched to a medical administration (CROSS_BENEFIT_DUPLICATE items).
    pub matched_to_medical: u64,
    /// Supplied an administration at a nursing visit.
    pub supplied_administrations: u64,
    /// Supplied nothing: no nursing visit in the window, no finding.
    pub unused: u64,
}

impl RunOptions {
    /// Lower bound of what is read: `--from` minus the lookback.
    pub fn read_from(&self) -> Option<Date> {
        self.from.map(|f| f.add_days(-self.lookback_days))
    }

    /// What the readers need from these options.
    pub fn scan_spec<'a>(&self, policy: &'a Policy, columns: &'a ColumnMap) -> ScanSpec<'a> {
        ScanSpec {
            policy,
            columns,
            lo: self.read_from(),
            hi: self.to,
            delimiter: self.delimiter,
            engine: self.engine,
            scan_only: self.scan_only,
            store: None,
        }
    }
}

/// Reads, evaluates and reconciles with the previous run, if one is given.
pub fn audit(
    opts: &RunOptions,
    policy: &Policy,
    columns: &ColumnMap,
    progress: &Progress,
    previous: Option<&PreviousRun>,
) -> Result<RunResult> {
    if let (Some(f), Some(t)) = (opts.from, opts.to)
        && f > t
    {
        return Err(Error::Config(format!("--from {f} is after --to {t}")));
    }
    let inputs = expand_inputs(&opts.inputs)?;
    let store = KeptStore::new(opts.memory_limit, &opts.out, inputs.iter().map(|i| i.bytes).sum());
    let spec = ScanSpec { store: Some(&store), ..opts.scan_spec(policy, columns) };
    let t0 = Instant::now();
    let extract = read_inputs(&inputs, &spec, progress)?;
    if !opts.scan_only {
        opts.reject_limit.check(&extract.files, &extract.rejects)?;
    }
    let kept = store.finish()?;
    crate::util::release_free_memory();
    let read_seconds = t0.elapsed().as_secs_f64();
    tracing::debug!(seconds = read_seconds, peak_rss_mib = crate::util::peak_rss_mib(), "read");
    let run = Run { opts, policy, progress, previous, read_seconds };
    let horizon = opts.to.or(kept.max_date);
    let mut r = match kept.rows {
        Held::Memory(rows) => audit_groups(extract, std::iter::once(Ok(rows)), None, horizon, inputs, &run),
        Held::Spilled(spilled) => {
            let groups = (0..spilled.groups()).map(|k| spilled.load(k));
            let info = SpillInfo {
                memory_limit_bytes: opts.memory_limit.unwrap_or_default(),
                rows: spilled.rows,
                bytes_written: spilled.written,
                partitions: spilled.partitions,
                groups: spilled.groups(),
            };
            tracing::info!(groups = info.groups, rows = info.rows, bytes = info.bytes_written, "auditing spilled partitions");
            let mut r = audit_groups(extract, groups, Some(spilled.dir()), horizon, inputs, &run)?;
            r.spill = Some(info);
            Ok(r)
        }
    }?;
    // Reversals that void nothing become rejects only once evaluated.
    if !opts.scan_only {
        opts.reject_limit.check(&r.files, &r.rejects)?;
    }
    crate::ingest::complete_raw_texts(&r.inputs, columns, &mut r.rejects)?;
    Ok(r)
}

/// Evaluates what was read (from files, or from tables in memory) and
/// reconciles it with the previous run, if one is given.
pub fn audit_extract(
    mut extract: Extract,
    inputs: Vec<InputFile>,
    opts: &RunOptions,
    policy: &Policy,
    progress: &Progress,
    previous: Option<&PreviousRun>,
    read_seconds: f64,
) -> Result<RunResult> {
    let horizon = opts.to.or_else(|| extract.max_date());
    let rows = Batch {
        chunks: std::mem::take(&mut extract.chunks),
        dispenses: std::mem::take(&mut extract.dispenses),
        uncoded: std::mem::take(&mut extract.uncoded),
    };
    let run = Run { opts, policy, progress, previous, read_seconds };
    let r = audit_groups(extract, std::iter::once(Ok(rows)), None, horizon, inputs, &run)?;
    opts.reject_limit.check(&r.files, &r.rejects)?;
    Ok(r)
}

/// What evaluating a read extract needs besides its rows.
#[derive(Clone, Copy)]
struct Run<'a> {
    opts: &'a RunOptions,
    policy: &'a Policy,
    progress: &'a Progress,
    previous: Option<&'a PreviousRun>,
    read_seconds: f64,
}

/// Evaluates groups of persons one after another (all of them at once, or
/// one group of spill partitions at a time: persons never span groups), then
/// sorts and reconciles. `extract` holds the file counts and rejects. With
/// `spool`, each group's episodes and timeline go to sorted runs there.
fn audit_groups(
    mut extract: Extract,
    groups: impl Iterator<Item = Result<Batch>>,
    spool: Option<Arc<PrivateDir>>,
    horizon: Option<Date>,
    inputs: Vec<InputFile>,
    run: &Run,
) -> Result<RunResult> {
    let Run { opts, policy, progress, previous, read_seconds } = *run;
    let t1 = Instant::now();
    let ctx = Ctx { policy, from: opts.from, to: opts.to, horizon: horizon.unwrap_or_default(), pharmacy_input: extract.pharmacy_input() };
    // Lines of previous findings: which tonight's input still has, and which
    // a reversal voided (read while each group's lines are at hand).
    let watch: FastSet<LineKey> = previous.map(|p| p.findings.iter().map(LineKey::of_row).collect()).unwrap_or_default();
    let mut present: FastSet<LineKey> = FastSet::default();
    let mut ev = Evaluated {
        files: std::mem::take(&mut extract.files),
        rejects: std::mem::take(&mut extract.rejects),
        tallies: vec![Tally::default(); RULES.len()],
        ..Default::default()
    };
    let (mut episodes, mut timeline) = match &spool {
        Some(dir) => (Spool::on_disk(Arc::clone(dir), "episodes"), Spool::on_disk(Arc::clone(dir), "timeline")),
        None => (Spool::default(), Spool::default()),
    };
    for rows in groups {
        signals::check()?;
        let rows = rows?;
        let mut part = Extract {
            files: std::mem::take(&mut ev.files),
            chunks: rows.chunks,
            dispenses: rows.dispenses,
            uncoded: rows.uncoded,
            rejects: Vec::new(),
        };
        let mut e = evaluate_extract(&mut part, &ctx, progress);
        if !watch.is_empty() {
            present.extend(part.chunks.iter().flatten().map(LineKey::of).filter(|k| watch.contains(k)));
        }
        e.voided.retain(|k| watch.contains(k));
        // Freed on the pool: dropping every kept line on one thread left
        // the other cores idle.
        std::mem::take(&mut part.chunks).into_par_iter().for_each(drop);
        if spool.is_some() {
            episodes.push_run(std::mem::take(&mut e.episodes))?;
            timeline.push_run(std::mem::take(&mut e.timeline))?;
        }
        ev.files = std::mem::take(&mut e.files);
        ev.merge(e);
    }
    tracing::debug!(seconds = t1.elapsed().as_secs_f64(), "merged");
    crate::util::release_free_memory();
    ev.sort();
    if spool.is_none() {
        episodes = Spool::in_memory(std::mem::take(&mut ev.episodes));
        timeline = Spool::in_memory(std::mem::take(&mut ev.timeline));
    }
    tracing::debug!(seconds = t1.elapsed().as_secs_f64(), peak_rss_mib = crate::util::peak_rss_mib(), "merged and sorted");
    let in_range = |d: Date| opts.from.is_none_or(|f| d >= f) && opts.to.is_none_or(|t| d <= t);
    let candidates = previous.map(|p| resolved_candidates(p, &ev.findings, in_range)).unwrap_or_default();
    let lifecycle = reconcile(previous, &ev.findings, &candidates, &present, &ev.voided, policy, opts.run_date);
    let mut r = ev.into_run(inputs, lifecycle, horizon, read_seconds, t1.elapsed().as_secs_f64());
    (r.episodes, r.timeline) = (episodes, timeline);
    Ok(r)
}

/// What reading produced, before evaluation: per-file counts, kept lines,
/// dispenses and uncoded pharmacy days, and rejects.
#[derive(Debug, Default)]
pub struct Extract {
    pub files: Vec<FileStats>,
    pub chunks: Vec<Vec<Line>>,
    pub dispenses: Vec<Dispense>,
    pub uncoded: Vec<UncodedDrugDay>,
    pub rejects: Vec<RejectRow>,
}

impl Extract {
    /// Adds the next file's output; its index is the number of files so far.
    pub fn push(&mut self, mut out: FileOutput) {
        self.files.push(std::mem::take(&mut out.stats));
        self.rejects.append(&mut out.rejects);
        self.dispenses.append(&mut out.dispenses);
        self.uncoded.append(&mut out.uncoded);
        self.chunks.extend(out.into_chunks());
    }

    /// The latest date kept: the run's horizon when `--to` is not given.
    pub fn max_date(&self) -> Option<Date> {
        self.chunks.iter().flatten().map(|l| l.service_date).chain(self.dispenses.iter().map(|d| d.date)).max()
    }

    /// Whether any pharmacy extract was read (CROSS_BENEFIT_DUPLICATE needs one).
    pub fn pharmacy_input(&self) -> bool {
        self.files.iter().any(|f| f.kind == Some(FileKind::Pharmacy))
    }
}

/// Reads every input in order, checking each is unchanged by the end.
pub fn read_inputs(inputs: &[InputFile], spec: &ScanSpec, progress: &Progress) -> Result<Extract> {
    let total_bytes: u64 = inputs.iter().map(|i| i.bytes).sum();
    let bar = progress.bar("read", total_bytes);
    let mut extract = Extract::default();
    for (k, input) in inputs.iter().enumerate() {
        signals::check()?;
        let before = bar.position();
        let mut out = read_file(input, k as u32, spec, &|n| {
            bar.inc(n);
            if let Some(s) = spec.store {
                s.progressed(n);
            }
        })?;
        // What the reader kept and did not hand over itself (plain readers).
        spec.hand_over(&mut out)?;
        input.check_unchanged()?;
        bar.set_position(before + input.bytes);
        tracing::info!(file = %input.path.display(), rows_read = out.stats.counts.rows_read, rows_rejected = out.stats.counts.rows_rejected, "read");
        extract.push(out);
    }
    bar.finish_and_clear();
    // Every file once more: one appended to while a later one was read.
    for input in inputs {
        input.check_unchanged()?;
    }
    signals::check()?;
    Ok(extract)
}

/// The results for a set of persons: the whole run, or one partition of a
/// distributed run, which `merge` adds up. Sorted only by `sort`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Evaluated {
    pub files: Vec<FileStats>,
    pub findings: Vec<Finding>,
    pub episodes: Vec<EpisodeRow>,
    pub rejects: Vec<RejectRow>,
    pub tallies: Vec<Tally>,
    pub pharmacy: PharmacyCounts,
    pub persons: usize,
    pub lines_kept: usize,
    /// Lines a reversal voided (for `--previous`).
    #[serde(skip)]
    pub voided: FastSet<LineKey>,
    #[serde(skip)]
    pub timeline: Vec<TimelineLine>,
}

/// The most persons one worker evaluates in a run (one part of the results).
const PERSONS_PER_RUN: usize = 256;

/// Groups the extract's lines by person and evaluates persons in parallel.
/// Takes the extract's file counts and rejects; leaves its lines.
pub fn evaluate_extract(ex: &mut Extract, ctx: &Ctx, progress: &Progress) -> Evaluated {
    let t0 = Instant::now();
    let persons = group_persons(&ex.chunks, &ex.dispenses, std::mem::take(&mut ex.uncoded));
    let n_persons = persons.groups.len();
    tracing::debug!(seconds = t0.elapsed().as_secs_f64(), persons = n_persons, "grouped by person");
    let bar = progress.bar("evaluate", n_persons as u64);
    // Each worker folds its run of persons (contiguous, in id order) into
    // one result, so per-person buffers are freed where they were made and
    // only parts are joined here, in order. Runs are short: persons with
    // policy lines cluster (a payer's infusion patients share an id range),
    // and one long run of them would leave the other workers idle.
    let parts: Vec<PatientResult> = persons
        .groups
        .par_iter()
        .with_max_len(PERSONS_PER_RUN)
        .fold(PatientResult::default, |mut acc, g| {
            let lines = &persons.lines[g.lines.clone()];
            evaluate_patient(lines, &persons.dispenses[g.dispenses.clone()], persons.uncoded_days(g), ctx, &mut acc);
            bar.inc(1);
            acc
        })
        .collect();
    bar.finish_and_clear();
    tracing::debug!(seconds = t0.elapsed().as_secs_f64(), parts = parts.len(), peak_rss_mib = crate::util::peak_rss_mib(), "evaluated");
    let mut ev = Evaluated {
        files: std::mem::take(&mut ex.files),
        rejects: std::mem::take(&mut ex.rejects),
        tallies: vec![Tally::default(); RULES.len()],
        persons: n_persons,
        lines_kept: persons.lines.len(),
        ..Default::default()
    };
    let (mut findings, mut episodes, mut timeline) = (Vec::new(), Vec::new(), Vec::new());
    for r in parts {
        ev.voided.extend(r.voided);
        ev.pharmacy.add(&r.pharmacy);
        add_tallies(&mut ev.tallies, &r.tallies);
        findings.push(r.findings);
        episodes.push(r.episodes);
        timeline.push(r.timeline);
        for (file, n) in r.duplicates.iter().enumerate() {
            if let Some(f) = ev.files.get_mut(file) {
                f.counts.rows_duplicate += n;
            }
        }
        for (file, reject) in r.unmatched {
            // A reversal that voids nothing was counted as kept: it is a reject.
            if let Some(f) = ev.files.get_mut(file as usize) {
                f.counts.rows_accepted -= 1;
                f.counts.rows_rejected += 1;
                f.counts.rows_kept -= 1;
                f.counts.rows_in_scope -= 1;
            }
            ev.rejects.push(reject);
        }
    }
    (ev.findings, ev.episodes, ev.timeline) = (concat_rows(findings), concat_rows(episodes), concat_rows(timeline));
    tracing::debug!(seconds = t0.elapsed().as_secs_f64(), "collected");
    ev
}

fn add_tallies(into: &mut [Tally], from: &[Tally]) {
    for (t, p) in into.iter_mut().zip(from) {
        t.evaluated += p.evaluated;
        t.flagged += p.flagged;
        t.not_evaluable += p.not_evaluable;
    }
}

impl PharmacyCounts {
    fn add(&mut self, o: &PharmacyCounts) {
        self.dispenses += o.dispenses;
        self.matched_to_medical += o.matched_to_medical;
        self.supplied_administrations += o.supplied_administrations;
        self.unused += o.unused;
    }
}

impl Evaluated {
    /// The run's result, with what evaluation does not know.
    pub fn into_run(
        self,
        inputs: Vec<InputFile>,
        lifecycle: Lifecycle,
        horizon: Option<Date>,
        read_seconds: f64,
        eval_seconds: f64,
    ) -> RunResult {
        RunResult {
            files: self.files,
            inputs,
            findings: self.findings,
            episodes: Spool::in_memory(self.episodes),
            rejects: self.rejects,
            tallies: self.tallies,
            pharmacy: self.pharmacy,
            lifecycle,
            timeline: Spool::in_memory(self.timeline),
            horizon,
            persons: self.persons,
            lines_kept: self.lines_kept,
            read_seconds,
            eval_seconds,
            spill: None,
        }
    }

    /// Adds another partition's results. File counts add up by file index;
    /// persons never span partitions, so nothing else overlaps.
    pub fn merge(&mut self, mut o: Evaluated) {
        if self.files.len() < o.files.len() {
            self.files.resize_with(o.files.len(), FileStats::default);
        }
        for (f, g) in self.files.iter_mut().zip(&o.files) {
            f.add_counts(g);
            f.kind = f.kind.or(g.kind);
        }
        if self.tallies.is_empty() {
            self.tallies = vec![Tally::default(); RULES.len()];
        }
        add_tallies(&mut self.tallies, &o.tallies);
        self.pharmacy.add(&o.pharmacy);
        move_rows(&mut self.findings, &mut o.findings);
        move_rows(&mut self.episodes, &mut o.episodes);
        move_rows(&mut self.rejects, &mut o.rejects);
        self.persons += o.persons;
        self.lines_kept += o.lines_kept;
        self.voided.extend(o.voided);
        move_rows(&mut self.timeline, &mut o.timeline);
    }

    /// The output order: findings by person, date, rule and line; episodes
    /// by person and date; rejects by file and line. A run that never
    /// spilled evaluates persons in id order, so its rows arrive sorted and
    /// each sort is one check.
    pub fn sort(&mut self) {
        if !self.findings.is_sorted_by(|a, b| finding_order(a, b).is_le()) {
            self.findings.par_sort_unstable_by(finding_order);
        }
        if !self.episodes.is_sorted_by(|a, b| a.order(b).is_le()) {
            self.episodes.par_sort_by(EpisodeRow::order);
        }
        self.rejects.sort_by(|a, b| (a.file, a.source_line, a.code).cmp(&(b.file, b.source_line, b.code)));
        // Stable: each person's lines stay in the order evaluation gave them.
        if !self.timeline.is_sorted_by(|a, b| a.order(b).is_le()) {
            self.timeline.par_sort_by(TimelineLine::order);
        }
    }
}

/// The findings' output order (OUTPUTS.md), then file and line for ties.
fn finding_order(a: &Finding, b: &Finding) -> std::cmp::Ordering {
    (&a.person_id, a.service_date, a.rule_id, &a.claim_id, a.claim_line_number, a.file, a.source_line).cmp(&(
        &b.person_id,
        b.service_date,
        b.rule_id,
        &b.claim_id,
        b.claim_line_number,
        b.file,
        b.source_line,
    ))
}

/// Concatenates parts in order. The first part's buffer is kept and grown
/// once to the total (a large one is remapped, not copied), so no rows are
/// copied twice and no doubling slack is held.
fn concat_rows<T>(parts: Vec<Vec<T>>) -> Vec<T> {
    let total = parts.iter().map(Vec::len).sum::<usize>();
    let mut parts = parts.into_iter();
    let mut out = parts.next().unwrap_or_default();
    out.reserve_exact(total - out.len());
    for mut p in parts {
        out.append(&mut p);
    }
    out
}

/// Appends `from` to `into`; moves the buffer when `into` is empty (the
/// first partition's rows, or the whole of a run that never spilled), so
/// large tables are not copied into freshly faulted memory.
fn move_rows<T>(into: &mut Vec<T>, from: &mut Vec<T>) {
    if into.is_empty() {
        std::mem::swap(into, from);
    } else {
        into.append(from);
    }
}

/// Every kept line and dispense grouped by person, persons in id order.
struct Persons<'a> {
    lines: Vec<&'a Line>,
    dispenses: Vec<&'a Dispense>,
    /// Uncoded pharmacy revenue days with their person keys, by person (in
    /// `person_order`) and date, unique.
    uncoded: Vec<(PersonKey, UncodedDrugDay)>,
    groups: Vec<PersonGroup>,
}

/// One person's ranges in `Persons::lines`, `Persons::dispenses` and
/// `Persons::uncoded`.
struct PersonGroup {
    lines: std::ops::Range<usize>,
    dispenses: std::ops::Range<usize>,
    uncoded: std::ops::Range<usize>,
}

impl Persons<'_> {
    /// The person's uncoded pharmacy revenue days. Only persons with medical
    /// lines have episodes that could use them.
    fn uncoded_days(&self, g: &PersonGroup) -> Vec<Date> {
        if g.lines.is_empty() {
            return Vec::new();
        }
        self.uncoded[g.uncoded.clone()].iter().map(|(_, u)| u.date).collect()
    }
}

/// Groups lines, dispenses and uncoded days by person. Sorts references,
/// never the (large) lines, and groups by the sort keys, so each line is
/// read once and a person's uncoded days are found by the same walk.
fn group_persons<'a>(chunks: &'a [Vec<Line>], dispenses: &'a [Dispense], uncoded: Vec<UncodedDrugDay>) -> Persons<'a> {
    let lines = sort_by_person(chunks.iter().flatten().collect(), |l| &l.person_id);
    let dispenses = sort_by_person(dispenses.iter().collect(), |d| &d.person_id);
    let mut uncoded: Vec<(PersonKey, UncodedDrugDay)> = uncoded.into_iter().map(|u| (prefix_key(&u.person_id), u)).collect();
    uncoded.par_sort_unstable_by(|a, b| person_order(a.0, b.0, || (&a.1.person_id, &b.1.person_id)).then(a.1.date.cmp(&b.1.date)));
    uncoded.dedup_by(|a, b| a.1 == b.1);
    // Merge the two sorted lists into one group per person.
    let mut groups = Vec::new();
    let (mut i, mut j, mut u) = (0, 0, 0);
    while i < lines.len() || j < dispenses.len() {
        let take_line = match (lines.get(i), dispenses.get(j)) {
            (Some(l), Some(d)) => person_order(l.0, d.0, || (&l.1.person_id, &d.1.person_id)).is_le(),
            (l, _) => l.is_some(),
        };
        let (key, person) =
            if take_line { (lines[i].0, lines[i].1.person_id.as_str()) } else { (dispenses[j].0, dispenses[j].1.person_id.as_str()) };
        let (li, dj) = (i, j);
        while i < lines.len() && person_order(lines[i].0, key, || (&lines[i].1.person_id, person)).is_eq() {
            i += 1;
        }
        while j < dispenses.len() && person_order(dispenses[j].0, key, || (&dispenses[j].1.person_id, person)).is_eq() {
            j += 1;
        }
        let at = |u: usize| person_order(uncoded[u].0, key, || (&uncoded[u].1.person_id, person));
        while u < uncoded.len() && at(u).is_lt() {
            u += 1;
        }
        let uk = u;
        while u < uncoded.len() && at(u).is_eq() {
            u += 1;
        }
        groups.push(PersonGroup { lines: li..i, dispenses: dj..j, uncoded: uk..u });
    }
    Persons {
        lines: lines.into_par_iter().map(|(_, l)| l).collect(),
        dispenses: dispenses.into_iter().map(|(_, d)| d).collect(),
        uncoded,
        groups,
    }
}

/// A person id's `prefix_key`: most comparisons never read the id itself.
/// Ids of up to 16 bytes order as their text; longer ones with a common
/// prefix by length first, which groups them all the same
/// (`Evaluated::sort` restores the text order).
type PersonKey = PrefixKey;

/// The order persons are grouped and evaluated in: by key, then, for long
/// ids the key does not settle, by their texts (read only then).
fn person_order<'s>(a: PersonKey, b: PersonKey, texts: impl FnOnce() -> (&'s str, &'s str)) -> std::cmp::Ordering {
    a.cmp(&b).then_with(|| {
        if a.1 <= 16 {
            return std::cmp::Ordering::Equal;
        }
        let (x, y) = texts();
        x.cmp(y)
    })
}

/// Sorts references by person (`person_order`), with their keys.
fn sort_by_person<T: Sync>(items: Vec<&T>, person: impl Fn(&T) -> &str + Sync) -> Vec<(PersonKey, &T)> {
    let mut idx: Vec<(PersonKey, &T)> = items.into_par_iter().with_min_len(1 << 14).map(|x| (prefix_key(person(x)), x)).collect();
    idx.par_sort_unstable_by(|a, b| person_order(a.0, b.0, || (person(a.1), person(b.1))));
    idx
}

#[derive(Default)]
struct PatientResult {
    findings: Vec<Finding>,
    episodes: Vec<EpisodeRow>,
    tallies: Vec<Tally>,
    pharmacy: PharmacyCounts,
    /// Reversals that reverse nothing: (file, reject row).
    unmatched: Vec<(u32, RejectRow)>,
    /// Lines a reversal voided.
    voided: Vec<LineKey>,
    timeline: Vec<TimelineLine>,
    /// Rows read once that another file repeated, by file index.
    duplicates: Vec<u64>,
}

impl PatientResult {
    /// Adds tallies and pharmacy counts of the next person.
    fn add_counts(&mut self, tallies: &[Tally], pharmacy: &PharmacyCounts) {
        if self.tallies.len() < tallies.len() {
            self.tallies.resize(tallies.len(), Tally::default());
        }
        add_tallies(&mut self.tallies, tallies);
        self.pharmacy.add(pharmacy);
    }
}

/// Evaluates one person and adds the results to `out` (a worker's fold, in
/// person order): rows are built where they stay, not in a vector per person.
fn evaluate_patient(lines: &[&Line], dispenses: &[&Dispense], uncoded_drug_days: Vec<Date>, ctx: &Ctx, out: &mut PatientResult) {
    // The same extract delivered twice: before anything reads the rows.
    let lines = &*drop_repeats(lines, &mut out.duplicates);
    let dispenses = &*drop_repeats(dispenses, &mut out.duplicates);
    let rx = net_reversals(dispenses.to_vec());
    out.unmatched.extend(unmatched_rejects(&rx.unmatched));
    // Without a policy-code line or a dispense no rule has an item: only
    // J-codes outside the policy (kept as drug days for PER_DIEM_WITHOUT_DRUG).
    // Most persons of a payer extract are such; they allocate nothing here
    // (empty tallies add nothing).
    if rx.active.is_empty() && !lines.iter().any(|l| ctx.policy.policy_codes.contains(l.hcpcs.as_str())) {
        if lines.iter().any(|l| l.units < 0.0) {
            out.unmatched.extend(unmatched_rejects(&net_reversals(lines.to_vec()).unmatched));
        }
        return;
    }
    let person = lines.first().map(|l| l.person_id.clone()).or_else(|| dispenses.first().map(|d| d.person_id.clone())).unwrap_or_default();
    let netted = net_reversals(lines.to_vec());
    out.unmatched.extend(unmatched_rejects(&netted.unmatched));
    out.voided.extend(netted.voided.iter().map(|l| LineKey::of(l)));
    let patient = build_patient(person, netted.active, PharmacySide { dispenses: rx.active, uncoded_drug_days }, ctx.policy);
    let (mut findings, tallies) = evaluate(&patient, ctx);
    // In output order here, on the pool, so a run's findings arrive sorted.
    findings.sort_unstable_by(finding_order);
    out.episodes.extend(episode_rows(&patient, &findings, ctx));
    let mut pharmacy = PharmacyCounts { dispenses: patient.dispenses.len() as u64, ..Default::default() };
    for d in &patient.dispenses {
        match d.used {
            DispenseUse::Matched => pharmacy.matched_to_medical += 1,
            DispenseUse::Supplied => pharmacy.supplied_administrations += 1,
            DispenseUse::Unused => pharmacy.unused += 1,
        }
    }
    out.add_counts(&tallies, &pharmacy);
    move_rows(&mut out.findings, &mut findings);
    let timeline = patient
        .lines
        .iter()
        .enumerate()
        // Home-infusion lines only: doses are in episodes, and premedication
        // lines (two per infusion) would double the rows for little.
        .map(|(i, l)| (i, l, patient.codes[i].role))
        .filter(|(_, _, role)| matches!(*role, "per_diem" | "nursing"))
        .map(|(i, l, role)| TimelineLine {
            person_id: l.person_id.clone(),
            service_date: l.service_date,
            end_date: l.end_date,
            hcpcs_code: l.hcpcs.clone(),
            units: l.units,
            claim_id: l.claim_id.clone(),
            claim_line_number: l.claim_line_number,
            role,
            episode: patient.episode_of[i].map(|k| {
                let a = &patient.admins[k];
                (a.date, ctx.policy.family_index(&a.family))
            }),
        });
    out.timeline.extend(timeline);
}

/// Reversals that void nothing, as rejects of their files.
fn unmatched_rejects<T: Reversible>(rows: &[&T]) -> Vec<(u32, RejectRow)> {
    rows.iter()
        .map(|r| {
            let (file, source_line, raw) = r.origin();
            let raw_text = raw.map(|t| raw_text(t.as_bytes())).unwrap_or_default();
            (file, RejectRow { file, source_line, code: "reversal_unmatched", reason: r.unmatched_reason(), raw_text })
        })
        .collect()
}

fn episode_rows<'p>(p: &'p Patient, findings: &'p [Finding], ctx: &'p Ctx) -> impl Iterator<Item = EpisodeRow> + 'p {
    p.admins.iter().filter(|a| ctx.in_range(a.date)).map(|a| {
        let mine: Vec<&Finding> = findings.iter().filter(|f| f.episode_id.as_deref() == Some(a.episode_id.as_str())).collect();
        let mut claims: Vec<&str> = a.line_idx.iter().map(|&i| p.lines[i].claim_id.as_str()).collect();
        claims.sort();
        claims.dedup();
        EpisodeRow {
            episode_id: a.episode_id.clone(),
            person_id: p.person_id.clone(),
            administration_date: a.date,
            drug_code: Text::new(&a.drug),
            dose_units: a.dose,
            dose_sequence: a.sequence,
            phase: a.phase.as_str(),
            supply: a.supply.as_str(),
            dispense_claim_id: a.dispense.and_then(|j| p.dispenses.get(j)).map(|d| d.rows[0].claim_id.clone()),
            days_since_previous: a.days_since_previous(),
            previous_administration_date: a.previous,
            line_count: a.line_idx.len() as u32,
            claim_ids: Text::from(claims.join(",")),
            finding_count: mine.len() as u32,
            max_severity: mine.iter().map(|f| f.severity).max(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testkit::{dispense, line};

    fn person_line(person: &str, date: &str) -> Line {
        Line { person_id: person.into(), ..line(date, "J2350", 300.0) }
    }

    fn person<'a>(p: &'a Persons, g: &PersonGroup) -> &'a str {
        match p.lines.get(g.lines.start).filter(|_| !g.lines.is_empty()) {
            Some(l) => &l.person_id,
            None => &p.dispenses[g.dispenses.start].person_id,
        }
    }

    #[test]
    fn persons_group_whole_whatever_their_ids() {
        // Ids sharing their first 16 bytes, of equal and of other lengths,
        // beside short ones: the grouping key alone cannot tell them apart.
        let long_a = "MEMBER-000000000-A";
        let long_b = "MEMBER-000000000-B";
        let long_c = "MEMBER-000000000-AA";
        let chunks = vec![
            vec![person_line(long_b, "2026-01-05"), person_line("P2", "2026-01-05"), person_line(long_a, "2026-01-05")],
            vec![person_line(long_c, "2026-02-05"), person_line(long_a, "2026-02-05"), person_line("P1", "2026-01-05")],
        ];
        let dispenses = vec![
            Dispense { person_id: long_b.into(), ..dispense("2026-01-01", 20.0) },
            Dispense { person_id: "P0".into(), ..dispense("2026-01-01", 20.0) },
        ];
        // Uncoded days out of order, repeated, and of a person with no line.
        let day = |person: &str, date: &str| UncodedDrugDay { person_id: person.into(), date: crate::rules::testkit::d(date) };
        let uncoded = vec![
            day(long_c, "2026-02-05"),
            day(long_a, "2026-02-05"),
            day("P0", "2026-01-01"),
            day("Q9", "2026-01-01"),
            day(long_a, "2026-01-05"),
            day(long_a, "2026-02-05"),
            day("MEMBER-000000000-AB", "2026-01-01"),
        ];
        let p = group_persons(&chunks, &dispenses, uncoded);
        let groups: Vec<(String, usize, usize)> =
            p.groups.iter().map(|g| (person(&p, g).to_string(), g.lines.len(), g.dispenses.len())).collect();
        // One group per person, each with all of its rows and no one else's.
        for g in &p.groups {
            let person = person(&p, g);
            let days = p.uncoded_days(g).iter().map(|d| d.to_string()).collect::<Vec<_>>();
            let want: &[&str] = match person {
                "MEMBER-000000000-A" => &["2026-01-05", "2026-02-05"],
                "MEMBER-000000000-AA" => &["2026-02-05"],
                // P0 has no medical line: no episode could use the day.
                _ => &[],
            };
            assert_eq!(days, want, "{person}");
            assert!(p.lines[g.lines.clone()].iter().all(|l| l.person_id == person));
            assert!(p.dispenses[g.dispenses.clone()].iter().all(|d| d.person_id == person));
        }
        let mut names: Vec<&str> = groups.iter().map(|g| g.0.as_str()).collect();
        names.sort();
        assert_eq!(names, ["MEMBER-000000000-A", "MEMBER-000000000-AA", "MEMBER-000000000-B", "P0", "P1", "P2"]);
        let of = |name: &str| groups.iter().find(|g| g.0 == name).map(|g| (g.1, g.2));
        assert_eq!(of(long_a), Some((2, 0)));
        assert_eq!(of(long_b), Some((1, 1)));
        assert_eq!(of(long_c), Some((1, 0)));
        assert_eq!(of("P0"), Some((0, 1)));
    }

    #[test]
    fn sort_restores_output_order_from_any_evaluation_order() {
        let row = |person: &str| TimelineLine {
            person_id: person.into(),
            service_date: crate::rules::testkit::d("2026-01-05"),
            end_date: None,
            hcpcs_code: "S9379".into(),
            units: 1.0,
            claim_id: "C1".into(),
            claim_line_number: 1,
            role: "per_diem",
            episode: None,
        };
        // The grouping order of long ids (length first) is not the text order.
        let mut ev = Evaluated { timeline: vec![row("MEMBER-000000000-B"), row("MEMBER-000000000-AA")], ..Default::default() };
        ev.sort();
        let order: Vec<&str> = ev.timeline.iter().map(|t| t.person_id.as_str()).collect();
        assert_eq!(order, ["MEMBER-000000000-AA", "MEMBER-000000000-B"]);
    }
}
