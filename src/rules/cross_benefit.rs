//! Cross-benefit rules (category `cross_benefit`): one administration paid
//! under both the medical and the pharmacy benefit.

use serde_json::json;

use super::{Ctx, Priced, RuleOutput, units};
use crate::episodes::{Patient, Supply};
use crate::policy::Basis;

pub fn cross_benefit_duplicate(p: &Patient, ctx: &Ctx) -> RuleOutput {
    let mut out = RuleOutput::default();
    for a in p.admins.iter().filter(|a| a.supply == Supply::Medical && ctx.in_range(a.date)) {
        if !ctx.pharmacy_input {
            // No pharmacy extract was read: a duplicate could not be seen.
            out.not_evaluable += 1;
            continue;
        }
        out.evaluated += 1;
        let (Some(d), Some(i)) = (a.dispense.and_then(|j| p.dispenses.get(j)), a.anchor) else { continue };
        // Medical payment for the dose: the drug's active lines that day.
        let start = p.lines.partition_point(|l| l.service_date < a.date);
        let medical_paid = (start..p.lines.len())
            .take_while(|&k| p.lines[k].service_date == a.date)
            .filter(|&k| p.lines[k].hcpcs == a.drug)
            .filter_map(|k| p.lines[k].paid_amount)
            .reduce(|x, y| x + y);
        let pharmacy_paid = d.paid_amount();
        let first = &d.rows[0];
        let window = ctx.policy.dispense_window_days();
        // What can be recovered is at most the smaller payment; with one
        // amount unknown, the known one bounds it.
        let smaller = match (medical_paid, pharmacy_paid) {
            (Some(m), Some(r)) => Some(m.min(r)),
            (m, r) => m.or(r),
        };
        let from = match (medical_paid, pharmacy_paid) {
            (Some(m), Some(r)) if m <= r => "medical drug lines' paid_amount (the smaller payment)",
            (Some(_), Some(_)) => "dispense paid_amount net of reversals (the smaller payment)",
            (Some(_), None) => "medical drug lines' paid_amount (the dispense has none)",
            (None, Some(_)) => "dispense paid_amount net of reversals (the medical lines have none)",
            (None, None) => "no payment on either benefit",
        };
        out.flag_priced(
            "CROSS_BENEFIT_DUPLICATE",
            p,
            ctx,
            i,
            format!(
                "{} {} mg billed on the medical claim on {} was also dispensed under the pharmacy benefit on {} (claim {} line {}, {} mg, {} days before); one dose paid twice: expected the drug under one benefit only",
                a.drug,
                units(a.dose),
                a.date,
                d.date,
                first.claim_id,
                first.claim_line_number,
                units(d.mg),
                a.date.days_since(d.date)
            ),
            json!({
                "drug_code": a.drug,
                "administration_date": a.date,
                "medical_dose_units": a.dose,
                "medical_paid_amount": medical_paid,
                "dispense": d.evidence(),
                "dispense_window_days": window,
            }),
            Some(Priced { basis: Basis::SmallerPayment, amount: smaller, from }),
        );
    }
    out
}
