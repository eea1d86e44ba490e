//! DX_CODE_INVALID (catalogue v3): every diagnosis of a claim's policy-code
//! lines against the official ICD-10-CM code set of the line's date
//! (`model::codeset`). One finding per claim, as diagnoses belong to the
//! claim: a professional claim repeats them on every line.

use serde_json::json;

use super::{Ctx, RuleOutput};
use crate::episodes::Patient;
use crate::model::codes::display_dx;
use crate::model::codeset::{CodeSet, Reason};
use crate::model::{Date, Line};

/// One code not billable where the claim carries it.
struct Bad<'a> {
    code: &'a str,
    reason: Reason,
    /// The (first) date it was judged on.
    date: Date,
    lines: Vec<i64>,
}

pub fn dx_code_invalid(p: &Patient, ctx: &Ctx) -> RuleOutput {
    let mut out = RuleOutput::default();
    let cs = ctx.policy.codeset();
    let mut idx: Vec<usize> = (0..p.lines.len()).filter(|&i| p.codes[i].in_policy()).collect();
    if idx.is_empty() {
        return out;
    }
    idx.sort_by(|&a, &b| {
        let (x, y) = (p.lines[a], p.lines[b]);
        (&x.claim_id, x.claim_line_number).cmp(&(&y.claim_id, y.claim_line_number))
    });
    // The patient's codes looked up once each (a claim repeats its codes on
    // every line, a person on every claim): code -> table index.
    let mut seen: Vec<(&str, Option<usize>)> = Vec::new();
    let ms_rule_on = ctx.policy.severity("DX_NOT_VALID_ON_DOS").is_some();
    for claim in idx.chunk_by(|&a, &b| p.lines[a].claim_id == p.lines[b].claim_id) {
        if !claim.iter().any(|&i| ctx.in_range(p.lines[i].service_date)) {
            continue;
        }
        // MS diagnoses a drug line of the claim carries are DX_NOT_VALID_ON_DOS's.
        let drug_ms = |c: &str| {
            ms_rule_on
                && claim.iter().any(|&i| p.codes[i].drug.is_some() && p.lines[i].dx.contains(c))
                && ctx.policy.dx_in_group(c, "ms_diagnosis")
        };
        let mut judged = false;
        let mut bad: Vec<Bad> = Vec::new();
        let mut on: Option<usize> = None;
        for &i in claim {
            let l: &Line = p.lines[i];
            if l.dx.is_empty() || !cs.covers(l.service_date) {
                continue;
            }
            judged = true;
            for c in l.dx.iter() {
                let at = match seen.iter().find(|s| s.0 == c) {
                    Some(s) => s.1,
                    None => {
                        let at = cs.index(c);
                        seen.push((c, at));
                        at
                    }
                };
                if cs.billable_at(at, l.service_date) || drug_ms(c) {
                    continue;
                }
                let reason = cs.reason(c, l.service_date).unwrap_or(Reason::Unknown);
                match bad.iter_mut().find(|b| b.code == c) {
                    Some(b) => b.lines.push(l.claim_line_number),
                    None => bad.push(Bad { code: c, reason, date: l.service_date, lines: vec![l.claim_line_number] }),
                }
                if on.is_none() && ctx.in_range(l.service_date) {
                    on = Some(i);
                }
            }
        }
        if !judged {
            out.not_evaluable += 1;
            continue;
        }
        out.evaluated += 1;
        let Some(i) = on else { continue };
        let l = p.lines[i];
        let (message, evidence) = describe(cs, &bad);
        out.flag("DX_CODE_INVALID", p, ctx, i, format!("claim {}: {message}", l.claim_id), evidence);
    }
    out
}

fn describe(cs: &CodeSet, bad: &[Bad]) -> (String, serde_json::Value) {
    let mut parts = Vec::new();
    let mut codes = Vec::new();
    for b in bad {
        let shown = display_dx(b.code);
        let ranges = cs.billable_ranges(b.code);
        let children = if b.reason == Reason::Header { cs.children_on(b.code, b.date) } else { Vec::new() };
        let when = ranges.iter().map(|s| format!("{} to {}", s.from, s.to)).collect::<Vec<_>>().join(", ");
        parts.push(match b.reason {
            Reason::Header => {
                let more = if children.len() > 12 { format!(", ... ({} in all)", children.len()) } else { String::new() };
                format!(
                    "{shown} is a category header on {}, not billable: report one of {}{more}",
                    b.date,
                    children.iter().take(12).cloned().collect::<Vec<_>>().join(", ")
                )
            }
            Reason::Ended => format!("{shown} is no longer valid on {} (billable {when})", b.date),
            Reason::NotYetValid => format!("{shown} is not yet valid on {} (billable {when})", b.date),
            Reason::Unknown => format!("{shown} is in no ICD-10-CM release (a typo, or a made-up or truncated code)"),
        });
        codes.push(json!({
            "code": shown,
            "reason": b.reason.as_str(),
            "service_date": b.date,
            "billable": ranges.iter().map(|s| json!({"from": s.from, "to": s.to})).collect::<Vec<_>>(),
            "claim_lines": b.lines,
            "billable_children": children,
        }));
    }
    let noun = if bad.len() == 1 { "diagnosis code" } else { "diagnosis codes" };
    (
        format!("{noun} not billable on the date of service: {}", parts.join("; ")),
        json!({"codes": codes, "code_set_last_date": cs.last_date()}),
    )
}
