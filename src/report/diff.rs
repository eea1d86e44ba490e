//! `claims-audit diff OLD NEW`: two complete output directories compared by
//! finding id. The monitor mode of a policy change: audit one extract under
//! the current policy and under the proposed one, and see what would change
//! before it goes live.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use super::previous::load_run;
use super::stake::rows_total;
use super::summary::money;
use super::table::Values;
use crate::error::Result;
use crate::history::FindingRow;
use crate::util::FastSet;

/// Findings of one rule on each side.
#[derive(Default)]
struct RuleDiff {
    only_old: (usize, f64),
    only_new: (usize, f64),
    both: (usize, f64),
}

/// Compares two runs; prints by rule what is only in OLD, only in NEW and in
/// both, with money at stake. With `out`, writes the differing findings as
/// Parquet with a `side` column (`old` or `new`). Returns whether they differ.
pub fn diff(old: &Path, new: &Path, out: Option<&Path>) -> Result<bool> {
    if let Some(out) = out {
        super::check_file_out("--out", out, &[old, new])?;
    }
    let a = load_run(old, "diff OLD")?;
    let b = load_run(new, "diff NEW")?;
    let ids_a: FastSet<&str> = a.findings.iter().map(|f| f.finding_id.as_str()).collect();
    let ids_b: FastSet<&str> = b.findings.iter().map(|f| f.finding_id.as_str()).collect();
    let mut by_rule: BTreeMap<&str, RuleDiff> = BTreeMap::new();
    let add = |slot: &mut (usize, f64), f: &FindingRow| {
        slot.0 += 1;
        slot.1 += f.amount_at_stake.unwrap_or(0.0);
    };
    let (mut only_old, mut only_new, mut both): (Vec<&FindingRow>, Vec<&FindingRow>, Vec<&FindingRow>) =
        (Vec::new(), Vec::new(), Vec::new());
    for f in &a.findings {
        let d = by_rule.entry(&f.rule_id).or_default();
        if ids_b.contains(f.finding_id.as_str()) {
            add(&mut d.both, f);
            both.push(f);
        } else {
            add(&mut d.only_old, f);
            only_old.push(f);
        }
    }
    for f in b.findings.iter().filter(|f| !ids_a.contains(f.finding_id.as_str())) {
        add(&mut by_rule.entry(&f.rule_id).or_default().only_new, f);
        only_new.push(f);
    }
    let differ = !only_old.is_empty() || !only_new.is_empty();

    let mut s = String::new();
    let _ = writeln!(s, "OLD {} (run {}, {} findings)", old.display(), a.run_id, a.findings.len());
    let _ = writeln!(s, "NEW {} (run {}, {} findings)", new.display(), b.run_id, b.findings.len());
    let row = |s: &mut String, label: &str, d: &RuleDiff| {
        let cells = [d.only_old, d.only_new, d.both].map(|(n, m)| format!("{n:>9} {:>14}", money(m)));
        let _ = writeln!(s, "{label:<24} {}", cells.join(" "));
    };
    let _ = writeln!(
        s,
        "{:<24} {:>9} {:>14} {:>9} {:>14} {:>9} {:>14}",
        "rule_id", "only_old", "at_stake", "only_new", "at_stake", "both", "at_stake"
    );
    for (rule, d) in &by_rule {
        row(&mut s, rule, d);
    }
    // The total counts each claim line once, at its largest amount: a line
    // three rules flag is not three times the money.
    let total = RuleDiff {
        only_old: (only_old.len(), rows_total(only_old.iter().copied())),
        only_new: (only_new.len(), rows_total(only_new.iter().copied())),
        both: (both.len(), rows_total(both.iter().copied())),
    };
    row(&mut s, "total", &total);
    let _ = writeln!(s, "at_stake: per rule, each finding counted; total, each claim line once at its largest amount");
    let _ = writeln!(s, "{}", if differ { "the runs differ" } else { "the runs make the same findings" });
    print!("{s}");

    if let Some(out) = out {
        write_sides(out, &a.run_id, &only_old, &b.run_id, &only_new)?;
    }
    Ok(differ)
}

/// The differing findings, OLD's first, as findings.parquet columns plus `side`.
fn write_sides(out: &Path, run_a: &str, only_old: &[&FindingRow], run_b: &str, only_new: &[&FindingRow]) -> Result<()> {
    let rows: Vec<&FindingRow> = only_old.iter().chain(only_new).copied().collect();
    let side: Vec<&str> = std::iter::repeat_n("old", only_old.len()).chain(std::iter::repeat_n("new", only_new.len())).collect();
    let run_ids: Vec<&str> = std::iter::repeat_n(run_a, only_old.len()).chain(std::iter::repeat_n(run_b, only_new.len())).collect();
    let mut t = super::table::findings("", &rows);
    t.set("run_id", strings(run_ids));
    t.insert(1, "side", strings(side));
    super::parquet_io::write_private(out, &super::table::to_record_batch(t)?)
}

fn strings<'a>(v: impl IntoIterator<Item = &'a str>) -> Values<'a> {
    Values::Str(v.into_iter().map(|s| Some(Cow::Borrowed(s))).collect())
}
