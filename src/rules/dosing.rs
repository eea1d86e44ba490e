//! Dosing rules (category `dosing`) over a person's administrations, taken in
//! date order per drug family.

use serde_json::json;

use super::{Ctx, Priced, RuleOutput, line_amount, units, with_supply};
use crate::episodes::{Administration, Patient, Phase, Supply};
use crate::policy::Basis;

/// What dose `a`, flagged on line `i`, was paid: the drug line's payment,
/// or for a pharmacy-supplied dose the dispense's paid amount net of
/// reversals (line `i` is then the nursing visit, not the drug).
fn dose_price(p: &Patient, a: &Administration, i: usize) -> Option<Priced> {
    let (amount, from) = match a.supply {
        Supply::Medical => (line_amount(p.lines[i]).0, "drug line payment"),
        Supply::Pharmacy => {
            (a.dispense.and_then(|j| p.dispenses.get(j)).and_then(|d| d.paid_amount()), "dispense paid_amount net of reversals")
        }
    };
    Some(Priced { basis: Basis::Dose, amount, from })
}

// Dosing findings sit on `Administration::anchor`: the first drug line, or
// for a pharmacy-supplied dose its nursing visit line.
use crate::policy::Dosing;

/// "J2350 600 mg", naming the pharmacy when a dispense supplied the dose.
fn dose_label(a: &Administration) -> String {
    match a.supply {
        Supply::Medical => format!("{} {} mg", a.drug, units(a.dose)),
        Supply::Pharmacy => format!("{} {} mg (dispensed under the pharmacy benefit)", a.drug, units(a.dose)),
    }
}

fn dosing<'a>(ctx: &'a Ctx, a: &Administration) -> Option<&'a Dosing> {
    ctx.policy.file.dosing.get(a.family.as_str())
}

pub fn dose_unexpected(p: &Patient, ctx: &Ctx) -> RuleOutput {
    let mut out = RuleOutput::default();
    for a in p.admins.iter().filter(|a| ctx.in_range(a.date)) {
        let Some(drug) = ctx.policy.drugs.get(a.drug.as_str()) else { continue };
        out.evaluated += 1;
        if drug.allowed_doses.iter().any(|d| (d - a.dose).abs() < 1e-9) {
            continue;
        }
        let allowed: Vec<String> = drug.allowed_doses.iter().map(|d| units(*d)).collect();
        // Every drug line that day; a pharmacy-supplied dose has its visit line.
        let ids: Vec<usize> = match a.supply {
            Supply::Medical => {
                let start = p.lines.partition_point(|l| l.service_date < a.date);
                (start..p.lines.len()).take_while(|&i| p.lines[i].service_date == a.date).filter(|&i| p.lines[i].hcpcs == a.drug).collect()
            }
            Supply::Pharmacy => a.anchor.into_iter().collect(),
        };
        for i in ids {
            out.flag_priced(
                "DOSE_UNEXPECTED",
                p,
                ctx,
                i,
                format!(
                    "{} dose of {} mg ({}) on {}; expected {} mg per the label schedule",
                    a.drug,
                    units(a.dose),
                    if a.supply == Supply::Pharmacy { "pharmacy dispense" } else { "net units" },
                    a.date,
                    allowed.join(" or ")
                ),
                with_supply(
                    p,
                    a,
                    json!({"drug_code": a.drug, "dose_units": a.dose, "allowed_doses": drug.allowed_doses, "administration_date": a.date}),
                ),
                dose_price(p, a, i),
            );
        }
    }
    out
}

pub fn initial_pair_interval(p: &Patient, ctx: &Ctx) -> RuleOutput {
    let mut out = RuleOutput::default();
    for a in &p.admins {
        let (Some(j), Some(d)) = (a.second_half, dosing(ctx, a)) else { continue };
        let second = &p.admins[j];
        if !ctx.in_range(second.date) {
            continue;
        }
        out.evaluated += 1;
        let gap = second.date.days_since(a.date);
        if (gap < d.pair_min_days || gap > d.pair_max_days)
            && let Some(i) = second.anchor
        {
            out.flag_priced(
                "INITIAL_PAIR_INTERVAL",
                p,
                ctx,
                i,
                format!(
                    "second {} mg initiation dose on {} is {gap} days after the first ({}); expected {} to {} days (the label gives the second {} mg dose two weeks after the first)",
                    units(second.dose),
                    second.date,
                    a.date,
                    d.pair_min_days,
                    d.pair_max_days,
                    units(second.dose)
                ),
                with_supply(p, second, json!({"first_date": a.date, "second_date": second.date, "days_apart": gap, "expected_min_days": d.pair_min_days, "expected_max_days": d.pair_max_days})),
                dose_price(p, second, i),
            );
        }
    }
    out
}

pub fn initial_pair_incomplete(p: &Patient, ctx: &Ctx) -> RuleOutput {
    let mut out = RuleOutput::default();
    for a in p.admins.iter().filter(|a| a.phase == Phase::InitiationFirst && ctx.in_range(a.date)) {
        let Some(d) = dosing(ctx, a) else { continue };
        let due_by = a.date.add_days(d.pair_search_days);
        if a.second_half.is_some() {
            out.evaluated += 1;
            continue;
        }
        if ctx.horizon < due_by {
            // Too early to tell: the second half may still come.
            continue;
        }
        out.evaluated += 1;
        if let Some(i) = a.anchor {
            out.flag_priced(
                "INITIAL_PAIR_INCOMPLETE",
                p,
                ctx,
                i,
                format!(
                    "initiation {} mg dose on {} has no second {} mg dose within {} days (by {due_by}); expected the second half of the initiation pair two weeks later",
                    units(a.dose),
                    a.date,
                    units(d.initiation_dose),
                    d.pair_search_days
                ),
                with_supply(p, a, json!({"first_date": a.date, "search_days": d.pair_search_days, "searched_until": due_by, "horizon": ctx.horizon, "next_administration": p.admins.iter().find(|b| b.family == a.family && b.date > a.date).map(|b| json!({"date": b.date, "drug_code": b.drug, "dose_units": b.dose}))})),
                dose_price(p, a, i),
            );
        }
    }
    out
}

pub fn interval_too_short(p: &Patient, ctx: &Ctx) -> RuleOutput {
    interval_rule(p, ctx, "INTERVAL_TOO_SHORT")
}

pub fn interval_overdue(p: &Patient, ctx: &Ctx) -> RuleOutput {
    interval_rule(p, ctx, "INTERVAL_OVERDUE")
}

fn interval_rule(p: &Patient, ctx: &Ctx, rule: &'static str) -> RuleOutput {
    let mut out = RuleOutput::default();
    for a in p.admins.iter().filter(|a| ctx.in_range(a.date)) {
        let (Some(prev), Some(days), Some(d)) = (a.previous, a.days_since_previous(), dosing(ctx, a)) else { continue };
        if rule == "INTERVAL_TOO_SHORT" && a.phase == Phase::InitiationSecond {
            continue;
        }
        out.evaluated += 1;
        let (fires, expected) = if rule == "INTERVAL_TOO_SHORT" {
            (days < d.min_interval_days, format!("at least {} days ({} weeks) between doses", d.min_interval_days, d.min_interval_days / 7))
        } else {
            (
                days > d.max_interval_days,
                format!(
                    "no more than {} days ({} weeks) between doses: a late or missed dose",
                    d.max_interval_days,
                    d.max_interval_days / 7
                ),
            )
        };
        if fires && let Some(i) = a.anchor {
            out.flag_priced(
                rule,
                p,
                ctx,
                i,
                format!("{} on {} is {days} days after the previous dose on {prev}; expected {expected}", dose_label(a), a.date),
                with_supply(p, a, json!({"administration_date": a.date, "previous_administration_date": prev, "days_since_previous": days, "min_interval_days": d.min_interval_days, "max_interval_days": d.max_interval_days, "phase": a.phase.as_str()})),
                dose_price(p, a, i),
            );
        }
    }
    out
}
