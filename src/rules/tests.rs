//! Each rule fires on its case and stays silent on the near miss.

use super::testkit::*;
use crate::model::Line;

fn ids(f: &[super::Finding]) -> Vec<(String, i64)> {
    f.iter().map(|x| (x.claim_id.to_string(), x.claim_line_number)).collect()
}

#[test]
fn dx_not_ms() {
    let f = fire("DX_NOT_MS", vec![line("2025-11-03", "J2350", 600.0).dx(&["R51.9", "G43.909"])]);
    assert_eq!(f.len(), 1);
    assert!(f[0].message.contains("R51.9") && f[0].message.contains("G35.A"), "{}", f[0].message);
    assert!(fire("DX_NOT_MS", vec![line("2025-11-03", "J2350", 600.0).dx(&["R51.9", "g35.b1"])]).is_empty());
    // Only drug lines are checked.
    assert!(fire("DX_NOT_MS", vec![line("2025-11-03", "S9379", 1.0).dx(&["R51.9"])]).is_empty());
}

#[test]
fn dx_not_valid_on_dos_g35_after_fy2026() {
    let f = fire("DX_NOT_VALID_ON_DOS", vec![line("2025-10-01", "J2350", 600.0).dx(&["G35"])]);
    assert_eq!(f.len(), 1);
    assert!(f[0].message.starts_with("diagnosis G35 not valid on the date of service 2025-10-01"), "{}", f[0].message);
    assert!(f[0].message.contains("expected one of G35.A"));
    // Near miss: the day before the code set changed.
    assert!(fire("DX_NOT_VALID_ON_DOS", vec![line("2025-09-30", "J2350", 600.0).dx(&["G35"])]).is_empty());
}

#[test]
fn dx_not_valid_on_dos_subcode_too_early() {
    let f = fire("DX_NOT_VALID_ON_DOS", vec![line("2025-09-30", "J2350", 600.0).dx(&["G35.A", "G35.B0"])]);
    assert_eq!(f.len(), 1, "one finding however many codes");
    assert!(fire("DX_NOT_VALID_ON_DOS", vec![line("2025-10-01", "J2350", 600.0).dx(&["G35A"])]).is_empty());
}

#[test]
fn dx_off_label() {
    assert_eq!(fire("DX_OFF_LABEL", vec![line("2025-11-03", "J2350", 600.0).dx(&["G35.C2"])]).len(), 1);
    assert!(fire("DX_OFF_LABEL", vec![line("2025-11-03", "J2350", 600.0).dx(&["G35.C2", "G35.C1"])]).is_empty());
}

#[test]
fn addon_without_primary() {
    let f = fire("ADDON_WITHOUT_PRIMARY", vec![line("2025-11-03", "99602", 2.0)]);
    assert_eq!(f.len(), 1);
    // Near miss: 99601 the same day.
    assert!(fire("ADDON_WITHOUT_PRIMARY", vec![line("2025-11-03", "99602", 2.0), line("2025-11-03", "99601", 1.0)]).is_empty());
    // A voided 99601 does not count as the primary.
    let voided = vec![line("2025-11-03", "99602", 1.0), line("2025-11-03", "99601", 1.0), line("2025-11-03", "99601", -1.0).claim("V", 1)];
    assert_eq!(fire("ADDON_WITHOUT_PRIMARY", voided).len(), 1);
}

#[test]
fn units_over_daily_max() {
    let two = vec![line("2025-11-03", "S9379", 1.0).claim("A", 1), line("2025-11-03", "S9379", 1.0).claim("B", 1).mods(&["JW"])];
    assert_eq!(fire("UNITS_OVER_DAILY_MAX", two).len(), 2, "each line of that code that day");
    assert_eq!(fire("UNITS_OVER_DAILY_MAX", vec![line("2025-11-03", "99602", 4.0)]).len(), 1);
    assert!(fire("UNITS_OVER_DAILY_MAX", vec![line("2025-11-03", "99602", 3.0)]).is_empty());
}

#[test]
fn duplicate_line_flags_all_but_first() {
    let lines = vec![
        line("2025-11-03", "J2930", 1.0).claim("B", 1),
        line("2025-11-03", "J2930", 1.0).claim("A", 2),
        line("2025-11-03", "J2930", 1.0).claim("A", 3),
    ];
    let f = fire("DUPLICATE_LINE", lines);
    assert_eq!(ids(&f), vec![("A".to_string(), 3), ("B".to_string(), 1)]);
    // Different modifiers or units: not duplicates.
    let near = vec![line("2025-11-03", "J2930", 1.0).claim("A", 1), line("2025-11-03", "J2930", 2.0).claim("B", 1)];
    assert!(fire("DUPLICATE_LINE", near).is_empty());
    let near = vec![
        line("2025-11-03", "J2350", 300.0).claim("A", 1).mods(&["JW"]),
        line("2025-11-03", "J2350", 300.0).claim("B", 1).mods(&["JZ"]),
    ];
    assert!(fire("DUPLICATE_LINE", near).is_empty());
}

#[test]
fn voided_and_rebilled_is_neither_duplicate_nor_two_doses() {
    let lines = vec![
        line("2025-11-03", "J2350", 600.0).claim("ORIG", 1),
        line("2025-11-03", "J2350", -600.0).claim("VOID", 1),
        line("2025-11-03", "J2350", 600.0).claim("REBILL", 1),
    ];
    assert!(fire("DUPLICATE_LINE", lines.clone()).is_empty());
    assert!(fire("UNITS_OVER_DAILY_MAX", lines.clone()).is_empty());
    assert!(fire("DOSE_UNEXPECTED", lines.clone()).is_empty(), "net 600, not 1200");
    // A fully voided dose is not a dose: no interval finding against it.
    let mut hist = vec![line("2025-05-01", "J2350", 600.0)];
    hist.extend(vec![line("2025-08-01", "J2350", 600.0).claim("X", 1), line("2025-08-01", "J2350", -600.0).claim("Y", 1)]);
    hist.push(line("2025-10-20", "J2350", 600.0));
    assert!(fire("INTERVAL_TOO_SHORT", hist).is_empty());
}

#[test]
fn ndc_mismatch() {
    let f = fire("NDC_MISMATCH", vec![line("2025-11-03", "J2350", 600.0).ndc(Some("50242015101"))]);
    assert_eq!(f.len(), 1);
    assert!(f[0].message.contains("50242-0150-01"));
    assert!(fire("NDC_MISMATCH", vec![line("2025-11-03", "J2350", 600.0)]).is_empty());
    let missing = fire("NDC_MISMATCH", vec![line("2025-11-03", "J2350", 600.0).ndc(None)]);
    assert!(missing.is_empty(), "no NDC is not evaluable, not a mismatch");
}

#[test]
fn pos_not_home() {
    assert_eq!(fire("POS_NOT_HOME", vec![line("2025-11-03", "99601", 1.0).pos(Some("11"))]).len(), 1);
    assert!(fire("POS_NOT_HOME", vec![line("2025-11-03", "99601", 1.0)]).is_empty());
    // The drug itself may be given anywhere.
    assert!(fire("POS_NOT_HOME", vec![line("2025-11-03", "J2350", 600.0).pos(Some("11"))]).is_empty());
}

#[test]
fn wastage_modifier() {
    let ffs = |m: &[&str]| vec![line("2025-11-03", "J2350", 600.0).program(Some("medicare_ffs")).mods(m)];
    assert_eq!(fire("WASTAGE_MODIFIER", ffs(&[])).len(), 1);
    assert_eq!(fire("WASTAGE_MODIFIER", ffs(&["JW", "JZ"])).len(), 1);
    assert!(fire("WASTAGE_MODIFIER", ffs(&["JZ"])).is_empty());
    assert!(fire("WASTAGE_MODIFIER", vec![line("2025-11-03", "J2350", 600.0).mods(&[])]).is_empty(), "commercial");
    // Before JZ was required (2023-07-01) nothing is checked.
    assert!(fire("WASTAGE_MODIFIER", vec![line("2023-06-30", "J2350", 600.0).program(Some("medicare_ffs")).mods(&[])]).is_empty());
}

#[test]
fn s_code_medicare() {
    assert_eq!(fire("S_CODE_MEDICARE", vec![line("2025-11-03", "S9379", 1.0).program(Some("medicare_ffs"))]).len(), 1);
    assert!(fire("S_CODE_MEDICARE", vec![line("2025-11-03", "S9379", 1.0).program(Some("medicare_advantage"))]).is_empty());
    assert!(fire("S_CODE_MEDICARE", vec![line("2025-11-03", "99601", 1.0).program(Some("medicare_ffs"))]).is_empty());
}

#[test]
fn per_diem_without_drug() {
    assert_eq!(fire("PER_DIEM_WITHOUT_DRUG", vec![line("2025-11-03", "S9379", 1.0)]).len(), 1);
    // Any J-code in the span counts, including one inside a multi-day span.
    assert!(fire("PER_DIEM_WITHOUT_DRUG", vec![line("2025-11-03", "S9379", 1.0), line("2025-11-03", "J1200", 1.0)]).is_empty());
    let span = vec![line("2025-11-01", "S9379", 3.0).end("2025-11-03"), line("2025-11-03", "J2350", 600.0)];
    assert!(fire("PER_DIEM_WITHOUT_DRUG", span).is_empty());
    let voided =
        vec![line("2025-11-03", "S9379", 1.0), line("2025-11-03", "J2350", 600.0), line("2025-11-03", "J2350", -600.0).claim("V", 1)];
    assert_eq!(fire("PER_DIEM_WITHOUT_DRUG", voided).len(), 1);
}

#[test]
fn duplicate_per_diem_typical_case() {
    let mut day = vec![
        line("2025-11-03", "J2350", 600.0).dx(&["G35"]),
        line("2025-11-03", "S9379", 1.0),
        line("2025-11-03", "J2919", 1.0),
        line("2025-11-03", "S9490", 1.0),
        line("2025-11-03", "99601", 1.0),
        line("2025-11-03", "99602", 1.0),
    ];
    let f = fire("DUPLICATE_PER_DIEM", day.clone());
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].hcpcs_code, "S9490");
    assert_eq!(fire("DX_NOT_VALID_ON_DOS", day.clone()).len(), 1);
    day.retain(|l| l.hcpcs != "S9379");
    assert!(fire("DUPLICATE_PER_DIEM", day).is_empty(), "S9490 alone is not a duplicate");
}

#[test]
fn premed_not_billed() {
    assert_eq!(fire("PREMED_NOT_BILLED", vec![line("2025-11-03", "J2350", 600.0)]).len(), 1);
    assert!(fire("PREMED_NOT_BILLED", clean_day("2025-11-03", 600.0)).is_empty());
    // Subcutaneous: premedication is oral, not billed.
    assert!(fire("PREMED_NOT_BILLED", vec![line("2025-11-03", "J2351", 920.0)]).is_empty());
}

#[test]
fn formulation_conflict() {
    let f = fire("FORMULATION_CONFLICT", vec![line("2025-11-03", "J2350", 600.0), line("2025-11-03", "J2351", 920.0)]);
    assert_eq!(f.len(), 2);
    assert!(fire("FORMULATION_CONFLICT", vec![line("2025-11-03", "J2350", 600.0), line("2025-11-04", "J2351", 920.0)]).is_empty());
}

#[test]
fn dose_unexpected() {
    assert_eq!(fire("DOSE_UNEXPECTED", vec![line("2025-11-03", "J2350", 450.0)]).len(), 1);
    assert_eq!(fire("DOSE_UNEXPECTED", vec![line("2025-11-03", "J2351", 600.0)]).len(), 1);
    assert!(fire("DOSE_UNEXPECTED", vec![line("2025-11-03", "J2350", 300.0), line("2025-11-17", "J2350", 300.0)]).is_empty());
    // Two 300-unit lines the same day net to one 600 mg dose.
    assert!(
        fire("DOSE_UNEXPECTED", vec![line("2025-11-03", "J2350", 300.0).claim("A", 1), line("2025-11-03", "J2350", 300.0).claim("A", 2)])
            .is_empty()
    );
}

#[test]
fn initial_pair_interval() {
    let f = fire("INITIAL_PAIR_INTERVAL", vec![line("2025-01-01", "J2350", 300.0), line("2025-01-23", "J2350", 300.0)]);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].service_date, d("2025-01-23"));
    // Near miss: day 21 and day 10 are inside the window.
    assert!(fire("INITIAL_PAIR_INTERVAL", vec![line("2025-01-01", "J2350", 300.0), line("2025-01-22", "J2350", 300.0)]).is_empty());
    assert!(fire("INITIAL_PAIR_INTERVAL", vec![line("2025-01-01", "J2350", 300.0), line("2025-01-11", "J2350", 300.0)]).is_empty());
    assert_eq!(fire("INITIAL_PAIR_INTERVAL", vec![line("2025-01-01", "J2350", 300.0), line("2025-01-10", "J2350", 300.0)]).len(), 1);
}

#[test]
fn initial_pair_incomplete() {
    let lone = || vec![line("2025-01-01", "J2350", 300.0)];
    assert_eq!(fire_with("INITIAL_PAIR_INCOMPLETE", lone(), Run { horizon: Some(d("2025-02-05")), ..Run::default() }).len(), 1);
    // Too early to tell: the horizon is before first + 35 days.
    assert!(fire_with("INITIAL_PAIR_INCOMPLETE", lone(), Run { horizon: Some(d("2025-02-04")), ..Run::default() }).is_empty());
    // A second 300 on day 36 is not a second half.
    assert_eq!(fire("INITIAL_PAIR_INCOMPLETE", vec![line("2025-01-01", "J2350", 300.0), line("2025-02-06", "J2350", 300.0)]).len(), 1);
    assert!(fire("INITIAL_PAIR_INCOMPLETE", vec![line("2025-01-01", "J2350", 300.0), line("2025-01-15", "J2350", 300.0)]).is_empty());
}

#[test]
fn interval_too_short() {
    let f = fire("INTERVAL_TOO_SHORT", vec![line("2025-01-01", "J2350", 600.0), line("2025-05-20", "J2350", 600.0)]);
    assert_eq!(f.len(), 1, "day 139");
    // Near miss: a dose on day 140.
    assert!(fire("INTERVAL_TOO_SHORT", vec![line("2025-01-01", "J2350", 600.0), line("2025-05-21", "J2350", 600.0)]).is_empty());
    // The second half of an initiation is exempt.
    assert!(fire("INTERVAL_TOO_SHORT", vec![line("2025-01-01", "J2350", 300.0), line("2025-01-15", "J2350", 300.0)]).is_empty());
    // A lone 300 twelve weeks after a 600 is no initiation: too short.
    assert_eq!(fire("INTERVAL_TOO_SHORT", vec![line("2025-01-01", "J2350", 600.0), line("2025-03-26", "J2350", 300.0)]).len(), 1);
}

#[test]
fn interval_overdue() {
    assert_eq!(fire("INTERVAL_OVERDUE", vec![line("2025-01-01", "J2350", 600.0), line("2025-07-31", "J2350", 600.0)]).len(), 1);
    assert!(fire("INTERVAL_OVERDUE", vec![line("2025-01-01", "J2350", 600.0), line("2025-07-30", "J2350", 600.0)]).is_empty());
}

#[test]
fn range_and_lookback_measure_against_history() {
    // The previous dose is before --from (read through the lookback); the
    // dose just after --from is still measured against it.
    let lines = vec![line("2025-06-01", "J2350", 600.0), line("2025-09-02", "J2350", 600.0)];
    let run = Run { from: Some(d("2025-09-01")), to: Some(d("2025-12-31")), horizon: None, ..Default::default() };
    let f = fire_with("INTERVAL_TOO_SHORT", lines, run);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].service_date, d("2025-09-02"));
    // No finding is dated before --from even when the history has problems.
    let lines = vec![line("2025-06-01", "J2350", 450.0)];
    let run = Run { from: Some(d("2025-09-01")), to: Some(d("2025-12-31")), horizon: None, ..Default::default() };
    assert!(fire_with("DOSE_UNEXPECTED", lines, run).is_empty());
}

#[test]
fn clean_history_has_no_findings() {
    let mut lines = clean_day("2025-01-06", 300.0);
    lines.extend(clean_day("2025-01-20", 300.0));
    lines.extend(clean_day("2025-06-23", 600.0));
    lines.extend(clean_day("2025-12-08", 600.0));
    for r in super::RULES {
        let f = fire(r.id, lines.clone());
        assert!(f.is_empty(), "{} fired on a clean history: {:?}", r.id, f.first().map(|x| &x.message));
    }
}

// ---- Catalogue v2: institutional and pharmacy claims ------------------------

/// A home-infusion visit without the drug line: per diem, nursing, steroid.
pub(super) fn visit(date: &str) -> Vec<Line> {
    let mut v = bare_visit(date);
    v.push(line(date, "J2930", 1.0));
    v
}

/// Per diem and nursing only: no J-code at all that day.
fn bare_visit(date: &str) -> Vec<Line> {
    vec![line(date, "S9379", 1.0), line(date, "99601", 1.0)]
}

pub(super) fn pharmacy(dispenses: Vec<crate::model::Dispense>) -> Run {
    Run { dispenses, pharmacy_input: true, ..Default::default() }
}

#[test]
fn pos_not_home_takes_the_setting_from_the_bill_type() {
    let inst = |code: &str, bt: &str| line("2025-11-03", code, 1.0).pos(None).bill_type(bt);
    // 034x home health: home.
    let out = eval_with("POS_NOT_HOME", vec![inst("99601", "0341"), inst("S9379", "341")], Run::default());
    assert_eq!((out.findings.len(), out.evaluated, out.not_evaluable), (0, 2, 0));
    // 013x hospital outpatient: one finding per home-infusion line.
    let out = eval_with("POS_NOT_HOME", vec![inst("99601", "0131"), inst("S9379", "0131"), inst("J2930", "0131")], Run::default());
    assert_eq!(out.findings.len(), 2);
    assert!(out.findings[0].message.contains("type of bill 131"), "{}", out.findings[0].message);
    // Neither a place of service nor a bill type: not evaluable, never clean.
    let out = eval_with("POS_NOT_HOME", vec![line("2025-11-03", "99601", 1.0).pos(None)], Run::default());
    assert_eq!((out.findings.len(), out.evaluated, out.not_evaluable), (0, 0, 1));
    // A place of service wins over the bill type.
    assert!(fire("POS_NOT_HOME", vec![inst("99601", "0131").pos(Some("12"))]).is_empty());
}

#[test]
fn premed_billed_under_a_pharmacy_revenue_line_is_not_evaluable() {
    let day = vec![line("2025-11-03", "J2350", 600.0), line("2025-11-03", "S9379", 1.0)];
    assert_eq!(fire("PREMED_NOT_BILLED", day.clone()).len(), 1);
    let run = Run { uncoded_drug_days: vec![d("2025-11-03")], ..Default::default() };
    let out = eval_with("PREMED_NOT_BILLED", day.clone(), run);
    assert_eq!((out.findings.len(), out.not_evaluable), (0, 1));
    // A 0250 line on another day does not excuse this one.
    let run = Run { uncoded_drug_days: vec![d("2025-11-04")], ..Default::default() };
    assert_eq!(fire_with("PREMED_NOT_BILLED", day, run).len(), 1);
}

#[test]
fn money_at_stake_is_paid_else_allowed_else_charged() {
    let off = |paid, allowed, charge| {
        let mut l = line("2025-11-03", "99601", 1.0).pos(Some("11"));
        (l.paid_amount, l.allowed_amount, l.charge_amount) = (paid, allowed, charge);
        fire("POS_NOT_HOME", vec![l])[0].at_stake
    };
    assert_eq!(off(Some(100.0), Some(120.0), Some(300.0)), Some(100.0));
    assert_eq!(off(None, Some(120.0), Some(300.0)), Some(120.0));
    // Before adjudication only the charge is known.
    assert_eq!(off(None, None, Some(300.0)), Some(300.0));
    assert_eq!(off(None, None, None), None);
}

#[test]
fn cross_benefit_duplicate() {
    let medical = clean_day("2025-11-03", 600.0);
    // Dispensed 4 days before the medical J2350: paid twice.
    let f = fire_with("CROSS_BENEFIT_DUPLICATE", medical.clone(), pharmacy(vec![dispense("2025-10-30", 20.0)]));
    assert_eq!(f.len(), 1);
    assert_eq!((f[0].hcpcs_code.as_str(), f[0].service_date), ("J2350", d("2025-11-03")));
    assert!(f[0].evidence.contains("\"claim_id\":\"RX-2025-10-30\"") && f[0].evidence.contains("\"mg\":600.0"), "{}", f[0].evidence);
    // Money at stake: the smaller payment (medical 100, pharmacy 3000).
    assert_eq!(f[0].at_stake, Some(100.0));
    // A reversed dispense is no dispense.
    let reversed = pharmacy(vec![dispense("2025-10-30", 20.0), dispense("2025-10-30", -20.0)]);
    assert!(fire_with("CROSS_BENEFIT_DUPLICATE", medical.clone(), reversed).is_empty());
    // Outside the 30-day window, or after the administration: no match.
    assert!(fire_with("CROSS_BENEFIT_DUPLICATE", medical.clone(), pharmacy(vec![dispense("2025-09-04", 20.0)])).is_empty());
    assert!(fire_with("CROSS_BENEFIT_DUPLICATE", medical.clone(), pharmacy(vec![dispense("2025-11-04", 20.0)])).is_empty());
    // Without a pharmacy extract the rule cannot see a duplicate.
    let out = eval_with("CROSS_BENEFIT_DUPLICATE", medical, Run::default());
    assert_eq!((out.findings.len(), out.evaluated, out.not_evaluable), (0, 0, 1));
}

#[test]
fn a_dispense_supplies_the_next_nursing_visit() {
    let run = pharmacy(vec![dispense("2025-11-01", 20.0)]);
    with_patient(bare_visit("2025-11-03"), run, |p, _| {
        assert_eq!(p.admins.len(), 1);
        let a = &p.admins[0];
        assert_eq!((a.supply, a.date, a.drug.as_str(), a.dose), (crate::episodes::Supply::Pharmacy, d("2025-11-03"), "J2350", 600.0));
        assert_eq!(p.lines[a.anchor.unwrap()].hcpcs, "99601");
    });
    assert!(fire_with("PER_DIEM_WITHOUT_DRUG", bare_visit("2025-11-03"), pharmacy(vec![dispense("2025-11-01", 20.0)])).is_empty());
    // Near miss: no dispense, the per diem has no drug.
    assert_eq!(fire_with("PER_DIEM_WITHOUT_DRUG", bare_visit("2025-11-03"), pharmacy(vec![])).len(), 1);
    // A dispense more than 30 days before the visit supplies nothing.
    assert_eq!(fire_with("PER_DIEM_WITHOUT_DRUG", bare_visit("2025-11-03"), pharmacy(vec![dispense("2025-10-01", 20.0)])).len(), 1);
    // Rules about a drug line do not apply: there is none.
    assert!(
        fire_with(
            "DX_NOT_MS",
            bare_visit("2025-11-03").into_iter().map(|l| l.dx(&["R51.9"])).collect(),
            pharmacy(vec![dispense("2025-11-01", 20.0)])
        )
        .is_empty()
    );
}

#[test]
fn pharmacy_supplied_doses_follow_the_dosing_rules() {
    // Two 600 mg doses 67 days apart: too short, on the second visit's 99601.
    let mut lines = visit("2025-09-01");
    lines.extend(visit("2025-11-07"));
    let run = pharmacy(vec![dispense("2025-08-29", 20.0), dispense("2025-11-05", 20.0)]);
    let f = fire_with("INTERVAL_TOO_SHORT", lines.clone(), run);
    assert_eq!(f.len(), 1);
    assert_eq!((f[0].hcpcs_code.as_str(), f[0].service_date), ("99601", d("2025-11-07")));
    assert!(f[0].evidence.contains("\"supply\":\"pharmacy\""), "{}", f[0].evidence);
    // Near miss: 168 days apart.
    let mut lines = visit("2025-09-01");
    lines.extend(visit("2026-02-16"));
    assert!(fire_with("INTERVAL_TOO_SHORT", lines, pharmacy(vec![dispense("2025-08-29", 20.0), dispense("2026-02-13", 20.0)])).is_empty());
}

#[test]
fn pharmacy_supplied_initiation_pair_is_clean() {
    let mut lines = visit("2025-09-01");
    lines.extend(visit("2025-09-15"));
    let run = || pharmacy(vec![dispense("2025-08-30", 10.0), dispense("2025-09-13", 10.0)]);
    for r in super::RULES {
        let f = fire_with(r.id, lines.clone(), run());
        assert!(f.is_empty(), "{} fired on a clean pharmacy initiation: {:?}", r.id, f.first().map(|x| &x.message));
    }
    with_patient(lines, run(), |p, _| {
        let phases: Vec<&str> = p.admins.iter().map(|a| a.phase.as_str()).collect();
        assert_eq!(phases, ["initiation_first", "initiation_second"]);
    });
}

#[test]
fn dispense_matching_takes_the_earliest_and_sums_a_day() {
    // Two fills one day make one 600 mg dispense; the earlier dispense is
    // matched, the later one supplies the next visit.
    let mut lines = clean_day("2025-11-03", 600.0);
    lines.extend(visit("2025-11-20"));
    let run = pharmacy(vec![dispense("2025-10-20", 10.0), dispense("2025-10-20", 10.0), dispense("2025-11-01", 20.0)]);
    with_patient(lines, run, |p, _| {
        use crate::episodes::DispenseUse::*;
        let uses: Vec<_> = p.dispenses.iter().map(|x| (x.date, x.mg, x.used)).collect();
        assert_eq!(uses, [(d("2025-10-20"), 600.0, Matched), (d("2025-11-01"), 600.0, Supplied)]);
        assert_eq!(p.admins[1].date, d("2025-11-20"));
    });
}

/// The seed case's six lines on one claim, all with `dx`.
fn seed_claim(date: &str, dx: &[&str]) -> Vec<Line> {
    let codes = [("J2350", 600.0), ("S9379", 1.0), ("J2919", 1.0), ("S9490", 1.0), ("99601", 1.0), ("99602", 1.0)];
    codes.iter().enumerate().map(|(n, &(c, u))| line(date, c, u).claim("SEED", n as i64 + 1).dx(dx)).collect()
}

#[test]
fn dx_code_invalid_leaves_the_seed_case_to_dx_not_valid_on_dos() {
    let out = eval_with("DX_CODE_INVALID", seed_claim("2025-11-03", &["G35"]), Run::default());
    assert!(out.findings.is_empty(), "G35 on the drug line's claim is DX_NOT_VALID_ON_DOS's");
    assert_eq!((out.evaluated, out.not_evaluable), (1, 0));
    assert_eq!(fire("DX_NOT_VALID_ON_DOS", seed_claim("2025-11-03", &["G35"])).len(), 1);
    // The same claim with a wrong non-MS code besides: one finding, not six.
    let f = fire("DX_CODE_INVALID", seed_claim("2025-11-03", &["G35", "Z79.9"]));
    assert_eq!(ids(&f), [("SEED".to_string(), 1)]);
    assert!(f[0].message.contains("Z79.9 is in no ICD-10-CM release"), "{}", f[0].message);
    assert!(!f[0].evidence.contains("\"G35\""), "{}", f[0].evidence);
}

#[test]
fn dx_code_invalid_g35_on_a_nursing_claim_after_fy2026() {
    let f = fire("DX_CODE_INVALID", vec![line("2025-10-01", "99601", 1.0).claim("NURSE", 1).dx(&["G35"])]);
    assert_eq!(f.len(), 1);
    let ev: serde_json::Value = serde_json::from_str(&f[0].evidence).unwrap();
    assert_eq!(ev["codes"][0]["reason"], "header");
    assert_eq!(ev["codes"][0]["billable_children"].as_array().unwrap().len(), 8);
    assert_eq!(ev["codes"][0]["billable"][0]["to"], "2025-09-30");
    assert!(f[0].message.contains("G35 is a category header on 2025-10-01"), "{}", f[0].message);
    // The last day G35 is billable.
    assert!(fire("DX_CODE_INVALID", vec![line("2025-09-30", "99601", 1.0).dx(&["G35"])]).is_empty());
    // Its successor on its first day, and the day before.
    assert!(fire("DX_CODE_INVALID", vec![line("2025-10-01", "S9379", 1.0).dx(&["g35.a"])]).is_empty());
    let early = fire("DX_CODE_INVALID", vec![line("2025-09-30", "S9379", 1.0).dx(&["G35.A"])]);
    assert!(early[0].evidence.contains("not_yet_valid"), "{}", early[0].evidence);
}

#[test]
fn dx_code_invalid_u071_boundary_and_each_reason() {
    let on = |date: &str, dx: &str| fire("DX_CODE_INVALID", vec![line(date, "J1200", 1.0).dx(&["G35", dx])]);
    let reason = |f: &[super::Finding]| serde_json::from_str::<serde_json::Value>(&f[0].evidence).unwrap()["codes"][0]["reason"].clone();
    assert_eq!(reason(&on("2020-03-31", "U07.1")), "not_yet_valid");
    assert!(on("2020-04-01", "U07.1").is_empty());
    assert_eq!(reason(&on("2024-06-03", "E11")), "header");
    assert!(on("2024-06-03", "e11.9").is_empty(), "valid code, lower case and dotted");
    assert_eq!(reason(&on("2024-06-03", "h40.11x0")), "ended");
    assert!(on("2016-09-30", "H40.11X0").is_empty(), "its last billable day");
    assert_eq!(reason(&on("2024-06-03", "G3S")), "unknown");
    assert!(on("2024-06-03", " m79. 604 ").is_empty(), "valid code, odd spacing");
}

#[test]
fn dx_code_invalid_not_evaluable_outside_the_code_set_and_without_diagnosis() {
    let out = eval_with("DX_CODE_INVALID", vec![line("2015-09-30", "99601", 1.0).dx(&["ZZZ"])], Run::default());
    assert_eq!((out.findings.len(), out.evaluated, out.not_evaluable), (0, 0, 1), "ICD-9 era");
    let out = eval_with("DX_CODE_INVALID", vec![line("2027-04-01", "99601", 1.0).dx(&["ZZZ"])], Run::default());
    assert_eq!((out.findings.len(), out.evaluated, out.not_evaluable), (0, 0, 1), "after the last covered date");
    let out = eval_with("DX_CODE_INVALID", vec![line("2015-10-01", "99601", 1.0).dx(&["ZZZ"])], Run::default());
    assert_eq!((out.findings.len(), out.evaluated), (1, 1), "the first covered day");
    let out = eval_with("DX_CODE_INVALID", vec![line("2025-11-03", "99601", 1.0).dx(&[])], Run::default());
    assert_eq!((out.findings.len(), out.evaluated, out.not_evaluable), (0, 0, 1), "no diagnosis");
}

#[test]
fn dx_code_invalid_one_finding_per_claim_on_its_lowest_line_in_range() {
    // The code only on lines 4 and 6; line 6 dated before --from.
    let mut lines = seed_claim("2025-11-03", &["G35A"]);
    lines[3] = lines[3].clone().dx(&["G35A", "G359"]);
    lines[5] = lines[5].clone().dx(&["G359"]);
    lines[5].service_date = d("2025-10-20");
    let f = fire_with("DX_CODE_INVALID", lines.clone(), Run { from: Some(d("2025-11-01")), ..Run::default() });
    assert_eq!(ids(&f), [("SEED".to_string(), 4)]);
    let ev: serde_json::Value = serde_json::from_str(&f[0].evidence).unwrap();
    assert_eq!(ev["codes"][0]["claim_lines"], serde_json::json!([4, 6]));
    // A code on a line the audit does not read (no policy code) is not looked at.
    let other = line("2025-11-03", "99213", 1.0).claim("SEED", 7).dx(&["ZZZ"]);
    assert!(fire("DX_CODE_INVALID", vec![line("2025-11-03", "S9379", 1.0).claim("SEED", 1), other]).is_empty());
}
