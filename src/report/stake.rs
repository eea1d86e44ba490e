//! Totals of money at stake (RULES.md v3, "Money at stake"): a claim line
//! flagged by several rules counts once, at the largest amount among its
//! findings; per-rule subtotals count each finding. Used by the summary, the
//! report, the manifest and `diff`, so all four add up the same way.

use std::collections::BTreeMap;

/// The sum over distinct claim lines (person, claim, line number) of each
/// line's largest amount. Findings with no amount add nothing. Summed in key
/// order, so the total is the same bit for bit on every run.
pub fn distinct_line_total<'a>(findings: impl IntoIterator<Item = (&'a str, &'a str, i64, Option<f64>)>) -> f64 {
    let mut by_line: BTreeMap<(&str, &str, i64), f64> = BTreeMap::new();
    for (person, claim, line, amount) in findings {
        let Some(a) = amount else { continue };
        let slot = by_line.entry((person, claim, line)).or_insert(a);
        *slot = slot.max(a);
    }
    by_line.values().sum()
}

/// Tonight's findings' distinct-line total.
pub fn run_total(findings: &[crate::rules::Finding]) -> f64 {
    distinct_line_total(findings.iter().map(|f| (f.person_id.as_str(), f.claim_id.as_str(), f.claim_line_number, f.at_stake)))
}

/// A previous or compared run's distinct-line total.
pub fn rows_total<'a>(rows: impl IntoIterator<Item = &'a crate::history::FindingRow>) -> f64 {
    distinct_line_total(rows.into_iter().map(|f| (f.person_id.as_str(), f.claim_id.as_str(), f.claim_line_number, f.amount_at_stake)))
}

/// A person's findings in brief: money at stake over their distinct lines,
/// error findings, findings.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PersonMoney<'a> {
    pub person_id: &'a str,
    pub at_stake: f64,
    pub errors: usize,
    pub findings: usize,
}

/// Persons with findings, most money at stake first, then most errors
/// (then most findings, then id): the order an analyst works them in.
pub fn ranked_persons(findings: &[crate::rules::Finding]) -> Vec<PersonMoney<'_>> {
    let mut by_person: BTreeMap<&str, Vec<&crate::rules::Finding>> = BTreeMap::new();
    for f in findings {
        by_person.entry(f.person_id.as_str()).or_default().push(f);
    }
    let mut v: Vec<PersonMoney> = by_person
        .into_iter()
        .map(|(person_id, fs)| PersonMoney {
            person_id,
            at_stake: distinct_line_total(fs.iter().map(|f| (f.person_id.as_str(), f.claim_id.as_str(), f.claim_line_number, f.at_stake))),
            errors: fs.iter().filter(|f| f.severity == crate::model::Severity::Error).count(),
            findings: fs.len(),
        })
        .collect();
    v.sort_by(|a, b| {
        b.at_stake.total_cmp(&a.at_stake).then(b.errors.cmp(&a.errors)).then(b.findings.cmp(&a.findings)).then(a.person_id.cmp(b.person_id))
    });
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_flagged_by_several_rules_counts_once_at_its_largest_amount() {
        // Line C1/1 is flagged three times (37,200 as a dose, 37,200 as a
        // line, 0 as a clinical signal); C2/1 once; C3/1 has no amount.
        let f = [
            ("P1", "C1", 1, Some(37_200.0)),
            ("P1", "C1", 1, Some(37_200.0)),
            ("P1", "C1", 1, Some(0.0)),
            ("P1", "C2", 1, Some(180.0)),
            ("P1", "C1", 2, Some(90.0)),
            ("P2", "C3", 1, None),
        ];
        let per_finding: f64 = f.iter().filter_map(|x| x.3).sum();
        assert_eq!(per_finding, 74_670.0);
        assert_eq!(distinct_line_total(f), 37_470.0);
        assert_eq!(distinct_line_total([]), 0.0);
    }
}
