//! Money at stake by rule basis (RULES.md v3): the line, the dose (a
//! pharmacy-supplied one's dispense), the excess, the smaller payment, none;
//! null when the extract has no amount for the basis.

use super::testkit::*;
use super::tests::{pharmacy, visit};
use crate::model::Line;
use crate::policy::{Basis, Policy};

fn paid(mut l: Line, amount: Option<f64>) -> Line {
    l.paid_amount = amount;
    l
}

/// The finding's amount and the basis its evidence names.
fn stake(f: &super::Finding) -> (Option<f64>, String) {
    let ev: serde_json::Value = serde_json::from_str(&f.evidence).expect("evidence is JSON");
    (f.at_stake, ev["at_stake"]["basis"].as_str().unwrap_or_default().to_string())
}

#[test]
fn line_basis_is_the_flagged_lines_payment() {
    let f = fire("DX_NOT_MS", vec![paid(line("2025-11-03", "J2350", 600.0).dx(&["R51.9"]), Some(37_200.0))]);
    assert_eq!(stake(&f[0]), (Some(37_200.0), "line".into()));
    // No money columns: null, never 0.
    let f = fire("DX_NOT_MS", vec![paid(line("2025-11-03", "J2350", 600.0).dx(&["R51.9"]), None)]);
    assert_eq!(stake(&f[0]), (None, "line".into()));
}

#[test]
fn dose_basis_is_the_drug_lines_payment() {
    // Two medical 600 mg doses 67 days apart; the second's drug line was paid 37,200.
    let mut lines = clean_day("2025-09-01", 600.0);
    lines.extend(clean_day("2025-11-07", 600.0).into_iter().map(|l| if l.hcpcs == "J2350" { paid(l, Some(37_200.0)) } else { l }));
    let f = fire("INTERVAL_TOO_SHORT", lines);
    assert_eq!(f[0].hcpcs_code.as_str(), "J2350");
    assert_eq!(stake(&f[0]), (Some(37_200.0), "dose".into()));
}

#[test]
fn pharmacy_supplied_dose_is_the_dispense_net_of_reversals_not_the_visit() {
    // The finding sits on the nursing visit (paid 100); the dose is the
    // dispense: 20 mL paid 3,000, after a 20 mL fill reversed and refilled.
    let mut lines = visit("2025-09-01");
    lines.extend(visit("2025-11-07"));
    let rx = vec![dispense("2025-08-29", 20.0), dispense("2025-11-05", 20.0), dispense("2025-11-05", -20.0), dispense("2025-11-05", 20.0)];
    let f = fire_with("INTERVAL_TOO_SHORT", lines, pharmacy(rx));
    assert_eq!(f.len(), 1);
    assert_eq!((f[0].hcpcs_code.as_str(), f[0].paid_amount), ("99601", Some(100.0)));
    assert_eq!(stake(&f[0]), (Some(3_000.0), "dose".into()));
    assert!(f[0].evidence.contains("dispense paid_amount net of reversals"), "{}", f[0].evidence);

    // DOSE_UNEXPECTED on a pharmacy-supplied 750 mg (25 mL): 3,750.
    let f = fire_with("DOSE_UNEXPECTED", visit("2025-11-07"), pharmacy(vec![dispense("2025-11-05", 25.0)]));
    assert_eq!(stake(&f[0]), (Some(3_750.0), "dose".into()));
    // A dispense without a paid amount: null.
    let mut unpaid = dispense("2025-11-05", 25.0);
    unpaid.paid_amount = None;
    let f = fire_with("DOSE_UNEXPECTED", visit("2025-11-07"), pharmacy(vec![unpaid]));
    assert_eq!(stake(&f[0]), (None, "dose".into()));
}

#[test]
fn excess_basis_is_the_share_of_units_over_the_maximum() {
    // 99602: 2 + 2 units against a daily maximum of 3; each line's payment
    // times (4 - 3) / 4.
    let lines = vec![
        paid(line("2025-11-03", "99602", 2.0).claim("A", 1), Some(120.0)),
        paid(line("2025-11-03", "99602", 2.0).claim("B", 1).mods(&["JW"]), Some(80.0)),
    ];
    let mut got: Vec<(Option<f64>, String)> = fire("UNITS_OVER_DAILY_MAX", lines).iter().map(stake).collect();
    got.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
    assert_eq!(got, [(Some(20.0), "excess".into()), (Some(30.0), "excess".into())]);
}

#[test]
fn smaller_payment_basis_takes_the_smaller_or_the_one_known() {
    let medical =
        |p: Option<f64>| clean_day("2025-11-03", 600.0).into_iter().map(|l| if l.hcpcs == "J2350" { paid(l, p) } else { l }).collect();
    // Medical 37,200, pharmacy 3,000: the smaller.
    let f = fire_with("CROSS_BENEFIT_DUPLICATE", medical(Some(37_200.0)), pharmacy(vec![dispense("2025-10-30", 20.0)]));
    assert_eq!(stake(&f[0]), (Some(3_000.0), "smaller_payment".into()));
    // Medical payment unknown: the dispense's.
    let f = fire_with("CROSS_BENEFIT_DUPLICATE", medical(None), pharmacy(vec![dispense("2025-10-30", 20.0)]));
    assert_eq!(stake(&f[0]), (Some(3_000.0), "smaller_payment".into()));
}

#[test]
fn clinical_signals_put_nothing_at_stake() {
    let f = fire("PREMED_NOT_BILLED", vec![paid(line("2025-11-03", "J2350", 600.0), Some(36_000.0))]);
    assert_eq!(stake(&f[0]), (Some(0.0), "none".into()));
    // A late dose (250 days) and an initiation pair 28 days apart.
    let late = vec![line("2025-01-01", "J2350", 600.0), paid(line("2025-09-08", "J2350", 600.0), Some(36_000.0))];
    assert_eq!(stake(&fire("INTERVAL_OVERDUE", late)[0]), (Some(0.0), "none".into()));
    let pair = vec![line("2025-09-01", "J2350", 300.0), line("2025-09-29", "J2350", 300.0)];
    assert_eq!(stake(&fire("INITIAL_PAIR_INTERVAL", pair)[0]), (Some(0.0), "none".into()));
    let alone = Run { horizon: Some(d("2025-12-31")), ..Default::default() };
    assert_eq!(
        stake(&fire_with("INITIAL_PAIR_INCOMPLETE", vec![line("2025-09-01", "J2350", 300.0)], alone)[0]),
        (Some(0.0), "none".into())
    );
}

#[test]
fn the_basis_is_policy_data() {
    let p = Policy::default_policy().unwrap();
    assert_eq!(p.basis("CROSS_BENEFIT_DUPLICATE"), Basis::SmallerPayment);
    assert_eq!(p.basis("INTERVAL_OVERDUE"), Basis::None);
    let base = crate::policy::DEFAULT_POLICY.replace("at_stake = \"line\"\n", "");
    // A rule the policy gives no basis (a rule new to the catalogue) is priced by its line.
    assert_eq!(Policy::from_toml(&base, "test").unwrap().basis("DX_NOT_MS"), Basis::Line);
    // A basis the rule cannot price, or an unknown one, is refused.
    let pos = |b: &str| {
        Policy::from_toml(&base.replace("[rules.POS_NOT_HOME]\n", &format!("[rules.POS_NOT_HOME]\nat_stake = \"{b}\"\n")), "test")
    };
    assert_eq!(pos("none").unwrap().basis("POS_NOT_HOME"), Basis::None);
    let err = pos("excess").unwrap_err().to_string();
    assert!(err.contains("[rules.POS_NOT_HOME] at_stake = \"excess\""), "{err}");
    assert!(pos("lots").is_err());
}
