//! summary.md: the run in words and tables, for a person.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use crate::pipeline::{RunOptions, RunResult};
use crate::policy::Policy;
use crate::rules::RULES;

pub(crate) fn money(v: f64) -> String {
    let cents = (v * 100.0).round() as i64;
    let (whole, frac) = (cents / 100, (cents % 100).abs());
    let digits = whole.abs().to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{}${grouped}.{frac:02}", if cents < 0 { "-" } else { "" })
}

/// New, open and resolved findings by rule: what the analyst's queue gained
/// and lost since the previous run.
fn lifecycle(s: &mut String, r: &RunResult) {
    let l = &r.lifecycle;
    let _ = writeln!(s, "## Since the previous run\n");
    match &l.previous_run_id {
        None => {
            let all = match r.findings.len() {
                0 => "there are no findings".to_string(),
                1 => "the one finding is new".to_string(),
                n => format!("all {n} findings are new"),
            };
            let _ = writeln!(s, "No previous run given (`--previous DIR`): {all}.\n");
            return;
        }
        Some(id) => {
            let dir = l.previous_dir.as_ref().map(|d| d.display().to_string()).unwrap_or_default();
            let _ = writeln!(
                s,
                "Compared with run {id} ({dir}): **{} new**, {} open, **{} resolved**.\n",
                l.new_count(),
                l.open_count(),
                l.resolved.len()
            );
        }
    }
    let mut by_rule: BTreeMap<&str, [usize; 3]> = BTreeMap::new();
    for (f, open) in r.findings.iter().zip(&l.open) {
        by_rule.entry(f.rule_id).or_default()[usize::from(*open)] += 1;
    }
    let mut reasons: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    for x in &l.resolved {
        by_rule.entry(&x.row.rule_id).or_default()[2] += 1;
        *reasons.entry(&x.row.rule_id).or_default().entry(x.reason.as_str()).or_default() += 1;
    }
    if by_rule.is_empty() {
        return;
    }
    let _ = writeln!(s, "| rule | new | open | resolved | resolved because |\n|---|---:|---:|---:|---|");
    for (rule, [new, open, resolved]) in &by_rule {
        let why = reasons.get(rule).map(|m| m.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")).unwrap_or_default();
        let _ = writeln!(s, "| {rule} | {new} | {open} | {resolved} | {why} |");
    }
    let _ = writeln!(s, "\nresolved.parquet lists each resolved finding with its reason.\n");
}

/// "1 line", "2 lines": a count with the noun that reads right for it.
pub(crate) fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// How many distinct claim lines have findings.
fn distinct_lines(r: &RunResult) -> usize {
    r.findings.iter().map(|f| (f.person_id.as_str(), f.claim_id.as_str(), f.claim_line_number)).collect::<BTreeSet<_>>().len()
}

pub fn render(opts: &RunOptions, policy: &Policy, r: &RunResult, run_id: &str) -> String {
    let t = super::totals(r);
    let mut s = String::new();
    let _ = writeln!(s, "# claims-audit run {run_id}\n");
    let range = match (opts.from, opts.to) {
        (None, None) => "all dates".to_string(),
        (f, t) => format!("{} to {}", f.map_or("the start".into(), |d| d.to_string()), t.map_or("the end".into(), |d| d.to_string())),
    };
    let _ = writeln!(
        s,
        "Policy **{}** version {} (rule catalogue v{}). Findings cover {range}; history read from {} ({} days of lookback).\n",
        policy.name(),
        policy.version(),
        policy.file.policy.catalogue_version,
        opts.read_from().map_or("the start".into(), |d| d.to_string()),
        opts.lookback_days
    );
    lifecycle(&mut s, r);
    let _ = writeln!(s, "## Totals\n");
    let _ = writeln!(s, "| measure | count |\n|---|---:|");
    for (k, v) in [
        ("input files", t.files as u64),
        ("rows read", t.counts.rows_read),
        ("rows accepted", t.counts.rows_accepted),
        ("rows rejected", t.counts.rows_rejected),
        ("rows in scope (policy codes, J-codes, policy NDCs)", t.counts.rows_in_scope),
        ("rows without a HCPCS code (institutional revenue lines, out of scope)", t.counts.rows_without_hcpcs),
        ("  of which pharmacy revenue lines kept for PREMED_NOT_BILLED", t.counts.rows_uncoded_drug),
        ("lines audited (in the read window)", t.counts.rows_kept),
        ("  of which repeating a row of an earlier file (read once)", t.counts.rows_duplicate),
        ("fields not UTF-8, read as Windows-1252", t.counts.fields_transcoded),
        ("persons audited", t.persons as u64),
        ("administration episodes in range", t.episodes as u64),
        ("findings", t.findings as u64),
    ] {
        let _ = writeln!(s, "| {k} | {v} |");
    }
    let lines = distinct_lines(r);
    let _ = writeln!(
        s,
        "\nMoney at stake: **{}** over {}, each line counted once at the largest amount among its findings.",
        money(t.amount_at_stake_distinct_lines),
        plural(lines, "distinct flagged claim line", "distinct flagged claim lines")
    );

    let _ = writeln!(s, "\n## Findings by rule\n");
    let _ = writeln!(
        s,
        "Money at stake follows each rule's basis (policy `at_stake`, shown by `claims-audit rules`): the flagged line's payment; the dose's (for a pharmacy-supplied dose, the dispense's net of reversals); the share over a daily maximum; the smaller of two benefits' payments; or nothing for a clinical signal. A rule's subtotal counts each of its findings, so a line flagged by two rules is in both subtotals; the total above counts it once.\n"
    );
    let _ = writeln!(
        s,
        "| rule | category | severity | findings | evaluated | not evaluable | money at stake |\n|---|---|---|---:|---:|---:|---:|"
    );
    for (d, tally) in RULES.iter().zip(&r.tallies) {
        let Some(sev) = policy.severity(d.id) else {
            let _ = writeln!(s, "| {} | {} | disabled | - | - | - | - |", d.id, d.category);
            continue;
        };
        let at_stake: f64 = r.findings.iter().filter(|f| f.rule_id == d.id).filter_map(|f| f.at_stake).sum();
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} |",
            d.id,
            d.category,
            sev.as_str(),
            tally.flagged,
            tally.evaluated,
            tally.not_evaluable,
            money(at_stake)
        );
    }

    let top = super::stake::ranked_persons(&r.findings);
    let _ = writeln!(s, "\n## Top persons by money at stake, then errors\n");
    if top.is_empty() {
        let _ = writeln!(s, "No findings.");
    } else {
        let _ = writeln!(s, "| person_id | money at stake | errors | findings |\n|---|---:|---:|---:|");
        for p in top.iter().take(10) {
            let _ = writeln!(s, "| {} | {} | {} | {} |", p.person_id, money(p.at_stake), p.errors, p.findings);
        }
    }

    let _ = writeln!(s, "\n## Rejected rows\n");
    if r.rejects.is_empty() {
        let _ = writeln!(s, "None: every row was read.");
    } else {
        let mut by_reason: BTreeMap<&str, u64> = BTreeMap::new();
        for j in &r.rejects {
            *by_reason.entry(j.code).or_default() += 1;
        }
        let _ = writeln!(s, "See rejects.parquet for each row's file, line, reason and raw text.\n");
        let _ = writeln!(s, "| reason | rows |\n|---|---:|");
        for (k, v) in by_reason {
            let _ = writeln!(s, "| {k} | {v} |");
        }
    }

    let ph = &r.pharmacy;
    if ph.dispenses > 0 || r.files.iter().any(|f| f.kind == Some(crate::columns::FileKind::Pharmacy)) {
        let _ = writeln!(s, "\n## Pharmacy-benefit dispenses\n");
        let _ = writeln!(
            s,
            "| dispenses (person, date, drug) | matched to a medical administration | supplied an administration | supplied nothing |"
        );
        let _ = writeln!(s, "|---:|---:|---:|---:|");
        let _ = writeln!(s, "| {} | {} | {} | {} |", ph.dispenses, ph.matched_to_medical, ph.supplied_administrations, ph.unused);
        let _ = writeln!(
            s,
            "\nA matched dispense is a CROSS_BENEFIT_DUPLICATE finding when the administration is in range. A dispense that supplied nothing had no nursing visit within the dispense window."
        );
    }

    let _ = writeln!(s, "\n## Not evaluable\n");
    let ne: Vec<String> = RULES
        .iter()
        .zip(&r.tallies)
        .filter(|(_, t)| t.not_evaluable > 0)
        .map(|(d, t)| {
            let items = plural(t.not_evaluable as usize, "item lacked", "items lacked");
            format!("- {}: {items} a column or value it needs (never counted as clean)", d.id)
        })
        .collect();
    if ne.is_empty() {
        let _ = writeln!(s, "Every rule could evaluate every item it looked at.");
    } else {
        let _ = writeln!(s, "{}", ne.join("\n"));
    }
    let _ = writeln!(
        s,
        "\n## Input files\n\n| file | kind | format | rows read | accepted | rejected | in scope |\n|---|---|---|---:|---:|---:|---:|"
    );
    for f in &r.files {
        let fmt = f
            .format
            .map(|x| serde_json::to_value(x).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default())
            .unwrap_or_default();
        let kind = f.kind.map_or("", |k| k.as_str());
        let _ = writeln!(
            s,
            "| {} | {kind} | {} | {} | {} | {} | {} |",
            f.path, fmt, f.counts.rows_read, f.counts.rows_accepted, f.counts.rows_rejected, f.counts.rows_in_scope
        );
    }
    s
}
