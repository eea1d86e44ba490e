//! Code-set consistency rules (category `code_set`).

use serde_json::json;

use super::{Ctx, RuleOutput, units, with_supply};
use crate::episodes::{Patient, Supply};
use crate::model::codes::{dashed_ndc, display_dx};
use crate::model::{Codes, Date, Line};
use crate::policy::NdcEntry;

fn net(p: &Patient, d: Date, code: &str) -> f64 {
    p.net.get(d, code)
}

/// Indices of active drug lines (any target drug) dated in range.
fn drug_lines<'a>(p: &'a Patient, ctx: &'a Ctx) -> impl Iterator<Item = usize> + 'a {
    (0..p.lines.len()).filter(move |&i| p.codes[i].drug.is_some() && ctx.in_range(p.lines[i].service_date))
}

fn dx_list(dx: &Codes) -> String {
    if dx.is_empty() { "no diagnosis".into() } else { dx.iter().map(display_dx).collect::<Vec<_>>().join(", ") }
}

/// The line's diagnoses that are MS codes.
fn ms_diagnoses<'a>(ctx: &Ctx, l: &'a Line) -> Vec<&'a str> {
    l.dx.iter().filter(|d| ctx.policy.dx_in_group(d, "ms_diagnosis")).collect()
}

/// MS codes valid on a date, in display form, for "expected" text.
fn valid_ms_codes(ctx: &Ctx, d: Date) -> Vec<String> {
    let mut v: Vec<String> = ctx
        .policy
        .icd
        .keys()
        .filter(|c| ctx.policy.dx_in_group(c, "ms_diagnosis") && ctx.policy.dx_valid_on(c, d))
        .map(|c| display_dx(c))
        .collect();
    v.sort();
    v
}

pub fn dx_not_ms(p: &Patient, ctx: &Ctx) -> RuleOutput {
    let mut out = RuleOutput::default();
    for i in drug_lines(p, ctx) {
        let l = &p.lines[i];
        out.evaluated += 1;
        if ms_diagnoses(ctx, l).is_empty() {
            let expected = valid_ms_codes(ctx, l.service_date);
            out.flag(
                "DX_NOT_MS",
                p,
                ctx,
                i,
                format!(
                    "{} billed with {}, none of which is multiple sclerosis; expected one of {} on {}: ocrelizumab is indicated only for MS",
                    l.hcpcs,
                    dx_list(&l.dx),
                    expected.join(", "),
                    l.service_date
                ),
                json!({"hcpcs_code": l.hcpcs, "diagnoses": l.dx.iter().map(display_dx).collect::<Vec<_>>(), "expected_any_of": expected}),
            );
        }
    }
    out
}

pub fn dx_not_valid_on_dos(p: &Patient, ctx: &Ctx) -> RuleOutput {
    let mut out = RuleOutput::default();
    for i in drug_lines(p, ctx) {
        let l = &p.lines[i];
        let ms = ms_diagnoses(ctx, l);
        if ms.is_empty() {
            continue;
        }
        out.evaluated += 1;
        let invalid: Vec<&str> = ms.iter().copied().filter(|d| !ctx.policy.dx_valid_on(d, l.service_date)).collect();
        if invalid.is_empty() {
            continue;
        }
        let mut why = Vec::new();
        let mut windows = Vec::new();
        for d in &invalid {
            let Some(entry) = ctx.policy.icd.get(*d) else { continue };
            let window = match (entry.valid_from, entry.valid_to) {
                (Some(f), Some(t)) => format!("valid {f} to {t}"),
                (Some(f), None) => format!("valid only for dates of service on or after {f}"),
                (None, Some(t)) => format!("valid only for dates of service up to {t}"),
                (None, None) => "valid".into(),
            };
            why.push(format!("{} is {} ({})", display_dx(d), window, entry.note));
            windows.push(json!({"code": display_dx(d), "valid_from": entry.valid_from, "valid_to": entry.valid_to}));
        }
        let expected = valid_ms_codes(ctx, l.service_date);
        out.flag(
            "DX_NOT_VALID_ON_DOS",
            p,
            ctx,
            i,
            format!(
                "diagnosis {} not valid on the date of service {}: {}; expected one of {}",
                invalid.iter().map(|d| display_dx(d)).collect::<Vec<_>>().join(", "),
                l.service_date,
                why.join("; "),
                expected.join(", ")
            ),
            json!({"service_date": l.service_date, "invalid": windows, "expected_any_of": expected}),
        );
    }
    out
}

pub fn dx_off_label(p: &Patient, ctx: &Ctx) -> RuleOutput {
    let mut out = RuleOutput::default();
    for i in drug_lines(p, ctx) {
        let l = &p.lines[i];
        let ms = ms_diagnoses(ctx, l);
        if ms.is_empty() {
            continue;
        }
        out.evaluated += 1;
        if ms.iter().all(|d| ctx.policy.dx_in_group(d, "off_label_diagnosis")) {
            out.flag(
                "DX_OFF_LABEL",
                p,
                ctx,
                i,
                format!(
                    "{} billed only with {}, which is outside the label (relapsing forms and primary progressive MS); expected a relapsing, active or primary progressive MS diagnosis",
                    l.hcpcs,
                    dx_list(&l.dx)
                ),
                json!({"ms_diagnoses": ms.iter().map(|d| display_dx(d)).collect::<Vec<_>>(), "off_label": true}),
            );
        }
    }
    out
}

pub fn addon_without_primary(p: &Patient, ctx: &Ctx) -> RuleOutput {
    let mut out = RuleOutput::default();
    for ((d, code), &n) in p.net.iter() {
        let Some(entry) = ctx.policy.hcpcs.get(code.as_str()) else { continue };
        if entry.addon_of.is_empty() || n <= 0.0 || !ctx.in_range(*d) {
            continue;
        }
        out.evaluated += 1;
        let primaries: Vec<(String, f64)> = entry.addon_of.iter().map(|c| (c.clone(), net(p, *d, c))).collect();
        if primaries.iter().all(|(_, u)| *u <= 0.0) {
            for i in lines_of(p, *d, code) {
                out.flag(
                    "ADDON_WITHOUT_PRIMARY",
                    p,
                    ctx,
                    i,
                    format!(
                        "add-on {code} ({} net units) billed on {d} with no {} that day; an add-on hour is payable only with its primary visit code",
                        units(n),
                        entry.addon_of.join("/")
                    ),
                    json!({"addon_code": code, "addon_net_units": n, "primary_net_units": primaries.iter().map(|(c, u)| json!({"code": c, "net_units": u})).collect::<Vec<_>>()}),
                );
            }
        }
    }
    out
}

/// Active lines of a code on a date.
fn lines_of<'a>(p: &'a Patient, d: Date, code: &'a str) -> impl Iterator<Item = usize> + 'a {
    let start = p.lines.partition_point(|l| l.service_date < d);
    (start..p.lines.len()).take_while(move |&i| p.lines[i].service_date == d).filter(move |&i| p.lines[i].hcpcs == code)
}

pub fn units_over_daily_max(p: &Patient, ctx: &Ctx) -> RuleOutput {
    let mut out = RuleOutput::default();
    for ((d, code), &n) in p.net.iter() {
        let Some(max) = ctx.policy.hcpcs.get(code.as_str()).and_then(|c| c.daily_max) else { continue };
        if !ctx.in_range(*d) {
            continue;
        }
        out.evaluated += 1;
        if n > max + 1e-9 {
            let ids: Vec<usize> = lines_of(p, *d, code).collect();
            for &i in &ids {
                // The share of the line's payment for units over the maximum.
                let (paid, _) = super::line_amount(p.lines[i]);
                let excess = super::Priced {
                    basis: crate::policy::Basis::Excess,
                    amount: paid.map(|x| x * (n - max) / n),
                    from: "line payment x (net units - daily maximum) / net units",
                };
                out.flag_priced(
                    "UNITS_OVER_DAILY_MAX",
                    p,
                    ctx,
                    i,
                    format!(
                        "{code} billed for {} net units on {d} across {} line(s); the daily maximum is {}",
                        units(n),
                        ids.len(),
                        units(max)
                    ),
                    json!({"hcpcs_code": code, "net_units": n, "daily_max": max, "lines": ids.len()}),
                    Some(excess),
                );
            }
        }
    }
    out
}

pub fn duplicate_line(p: &Patient, ctx: &Ctx) -> RuleOutput {
    let mut out = RuleOutput::default();
    // Units compare exactly (as bits): equal units means the same number billed.
    // Sort the items by (key, claim, line) and read runs of equal keys: no
    // map or per-group allocation.
    let key = |i: usize| {
        let l = p.lines[i];
        (l.service_date, l.hcpcs.as_str(), l.units.to_bits(), l.modifiers.joined())
    };
    let mut items: Vec<usize> = (0..p.lines.len()).filter(|&i| p.codes[i].in_policy() && ctx.in_range(p.lines[i].service_date)).collect();
    out.evaluated = items.len() as u64;
    items.sort_by(|&a, &b| {
        key(a)
            .cmp(&key(b))
            .then_with(|| (&p.lines[a].claim_id, p.lines[a].claim_line_number).cmp(&(&p.lines[b].claim_id, p.lines[b].claim_line_number)))
    });
    for ids in items.chunk_by(|&a, &b| key(a) == key(b)) {
        if ids.len() < 2 {
            continue;
        }
        let (d, code, _, _) = key(ids[0]);
        let first = &p.lines[ids[0]];
        let mods = &first.modifiers;
        for &i in &ids[1..] {
            let l = &p.lines[i];
            out.flag(
                "DUPLICATE_LINE",
                p,
                ctx,
                i,
                format!(
                    "{code} {} units on {d} duplicates claim {} line {} (same units and modifiers [{}]) after reversals; expected one line",
                    units(l.units),
                    first.claim_id,
                    first.claim_line_number,
                    mods.iter().collect::<Vec<_>>().join(",")
                ),
                json!({"hcpcs_code": code, "units": l.units, "modifiers": mods, "first_claim_id": first.claim_id, "first_claim_line_number": first.claim_line_number, "copies": ids.len()}),
            );
        }
    }
    out
}

pub fn ndc_mismatch(p: &Patient, ctx: &Ctx) -> RuleOutput {
    let mut out = RuleOutput::default();
    for i in drug_lines(p, ctx) {
        let l = &p.lines[i];
        let Some(drug) = p.codes[i].drug else { continue };
        if drug.ndc.is_empty() {
            continue;
        }
        let Some(ndc) = l.ndc.as_deref() else {
            out.not_evaluable += 1;
            continue;
        };
        out.evaluated += 1;
        if !drug.ndc.iter().any(|n| n.code() == ndc) {
            let listed: Vec<String> = drug.ndc.iter().map(|n| dashed_ndc(n.code())).collect();
            // An NDC's unit is the NCPDP billing unit, per mL for a solution
            // (REFERENCE.md), not the HCPCS code's 1 mg.
            let described: Vec<String> = drug
                .ndc
                .iter()
                .map(|n| match n {
                    NdcEntry::Product(x) if x.mg_per_unit.is_some() || !x.package.is_empty() => {
                        let per = x.mg_per_unit.map(|m| format!("{} mg per mL", units(m)));
                        let parts: Vec<String> = [(!x.package.is_empty()).then(|| x.package.clone()), per].into_iter().flatten().collect();
                        format!("{} ({})", dashed_ndc(n.code()), parts.join("; "))
                    }
                    _ => dashed_ndc(n.code()),
                })
                .collect();
            let shown = if ndc.len() == 11 && ndc.bytes().all(|b| b.is_ascii_digit()) {
                dashed_ndc(ndc)
            } else {
                format!("{ndc:?} (not an 11-digit 5-4-2 NDC)")
            };
            out.flag(
                "NDC_MISMATCH",
                p,
                ctx,
                i,
                format!("{} billed with NDC {shown}; expected {} for {}", l.hcpcs, described.join(" or "), l.hcpcs),
                // NDCs in evidence are 11-digit 5-4-2 with dashes, as in messages.
                json!({"hcpcs_code": l.hcpcs, "ndc": dashed_ndc(ndc), "expected_any_of": listed}),
            );
        }
    }
    out
}

/// Where a line was delivered: its place of service, else (institutional
/// claims) its type of bill (RULES.md v2 "Site of care").
#[derive(Clone, Copy)]
enum Setting<'a> {
    Pos(&'a str),
    BillType(&'a str),
    Unknown,
}

fn setting(l: &Line) -> Setting<'_> {
    match (l.pos.as_deref(), l.bill_type.as_deref()) {
        (Some(pos), _) => Setting::Pos(pos),
        (None, Some(bt)) => Setting::BillType(bt),
        (None, None) => Setting::Unknown,
    }
}

pub fn pos_not_home(p: &Patient, ctx: &Ctx) -> RuleOutput {
    let mut out = RuleOutput::default();
    let home = &ctx.policy.file.home_infusion.place_of_service;
    let home_bills = &ctx.policy.file.home_infusion.bill_types;
    for (i, l) in p.lines.iter().enumerate() {
        if !ctx.in_range(l.service_date) || !p.codes[i].entry.is_some_and(|c| c.home_only) {
            continue;
        }
        let s = setting(l);
        let is_home = match s {
            Setting::Unknown => {
                out.not_evaluable += 1;
                continue;
            }
            Setting::Pos(pos) => home.iter().any(|h| h == pos),
            Setting::BillType(bt) => ctx.policy.bill_type_is_home(bt),
        };
        out.evaluated += 1;
        if !is_home {
            // The texts only for a finding: most lines are at home.
            let (what, expected) = match s {
                Setting::Pos(pos) => (format!("place of service {pos}"), format!("{} (home)", home.join("/"))),
                Setting::Unknown => continue,
                Setting::BillType(bt) => {
                    let bills = home_bills.iter().map(|b| format!("{b}x")).collect::<Vec<_>>().join(", ");
                    (format!("type of bill {bt} and no place of service"), format!("a home health type of bill ({bills})"))
                }
            };
            out.flag(
                "POS_NOT_HOME",
                p,
                ctx,
                i,
                format!("home-infusion code {} billed with {what}; expected {expected}", l.hcpcs),
                json!({"hcpcs_code": l.hcpcs, "place_of_service": l.pos, "bill_type": l.bill_type, "expected_place_of_service": home, "expected_bill_types": home_bills}),
            );
        }
    }
    out
}

pub fn wastage_modifier(p: &Patient, ctx: &Ctx) -> RuleOutput {
    let mut out = RuleOutput::default();
    let w = &ctx.policy.file.wastage;
    for i in drug_lines(p, ctx) {
        let l = &p.lines[i];
        if !p.codes[i].drug.is_some_and(|d| d.wastage_modifiers) || w.required_from.is_some_and(|f| l.service_date < f) {
            continue;
        }
        let Some(program) = l.program.as_deref() else {
            out.not_evaluable += 1;
            continue;
        };
        if !l.presence.modifiers {
            out.not_evaluable += 1;
            continue;
        }
        out.evaluated += 1;
        if !w.programs.iter().any(|p| p == program) {
            continue;
        }
        let present: Vec<&str> = l.modifiers.iter().filter(|m| w.modifiers.iter().any(|x| x == m)).collect();
        if present.len() != 1 {
            let what = if present.is_empty() { "neither".to_string() } else { present.join(" and ") };
            out.flag(
                "WASTAGE_MODIFIER",
                p,
                ctx,
                i,
                format!(
                    "{program} {} line has {what} of {}; expected exactly one (JW for an amount discarded, JZ for none) on a single-dose-vial drug",
                    l.hcpcs,
                    w.modifiers.join("/")
                ),
                json!({"payer_program": program, "modifiers": l.modifiers, "wastage_modifiers_present": present}),
            );
        }
    }
    out
}

pub fn s_code_medicare(p: &Patient, ctx: &Ctx) -> RuleOutput {
    let mut out = RuleOutput::default();
    let programs = &ctx.policy.file.medicare.programs;
    for (i, l) in p.lines.iter().enumerate() {
        if !ctx.in_range(l.service_date) || p.codes[i].entry.is_none_or(|c| c.medicare_payable) {
            continue;
        }
        let Some(program) = l.program.as_deref() else {
            out.not_evaluable += 1;
            continue;
        };
        out.evaluated += 1;
        if programs.iter().any(|p| p == program) {
            out.flag(
                "S_CODE_MEDICARE",
                p,
                ctx,
                i,
                format!("{} billed to {program}; Medicare does not recognise S-codes (its home infusion benefit uses G-codes)", l.hcpcs),
                json!({"hcpcs_code": l.hcpcs, "payer_program": program}),
            );
        }
    }
    out
}

pub fn per_diem_without_drug(p: &Patient, ctx: &Ctx) -> RuleOutput {
    let mut out = RuleOutput::default();
    // Days of any J-code drug, and days a dispense supplied.
    let drug_days: Vec<Date> = {
        let mut v: Vec<Date> = p.net.iter().filter(|((_, c), n)| c.starts_with('J') && **n > 0.0).map(|((d, _), _)| *d).collect();
        v.extend(p.admins.iter().filter(|a| a.supply == Supply::Pharmacy).map(|a| a.date));
        v.sort();
        v.dedup();
        v
    };
    for (i, l) in p.lines.iter().enumerate() {
        if !ctx.in_range(l.service_date) || !p.codes[i].in_group("per_diem") {
            continue;
        }
        out.evaluated += 1;
        let end = l.end_date.unwrap_or(l.service_date).max(l.service_date);
        let k = drug_days.partition_point(|d| *d < l.service_date);
        if drug_days.get(k).is_none_or(|d| *d > end) {
            out.flag(
                "PER_DIEM_WITHOUT_DRUG",
                p,
                ctx,
                i,
                format!(
                    "per diem {} spans {} to {end} but the person has no J-code drug with net units, nor a pharmacy-supplied dose, on any of those days; a per diem is billed only for days of drug therapy",
                    l.hcpcs, l.service_date
                ),
                json!({"hcpcs_code": l.hcpcs, "span_start": l.service_date, "span_end": end, "drug_days_in_span": 0}),
            );
        }
    }
    out
}

pub fn duplicate_per_diem(p: &Patient, ctx: &Ctx) -> RuleOutput {
    let mut out = RuleOutput::default();
    for a in &p.admins {
        if !ctx.in_range(a.date) {
            continue;
        }
        for i in a.line_idx.iter().copied().filter(|&i| p.lines[i].service_date == a.date) {
            let l = &p.lines[i];
            let Some(entry) = p.codes[i].entry else { continue };
            if entry.included_in.is_empty() {
                continue;
            }
            out.evaluated += 1;
            let covering: Vec<&String> = entry.included_in.iter().filter(|c| covered_by(p, a.date, c, &a.line_idx)).collect();
            if let Some(primary) = covering.first() {
                out.flag(
                    "DUPLICATE_PER_DIEM",
                    p,
                    ctx,
                    i,
                    format!(
                        "{} per diem billed on {} infusion day {} that already has per diem {primary}; the steroid premedication is included in the primary therapy's per diem",
                        l.hcpcs, a.drug, a.date
                    ),
                    with_supply(p, a, json!({"hcpcs_code": l.hcpcs, "administration_date": a.date, "drug_code": a.drug, "primary_per_diem": primary})),
                );
            }
        }
    }
    out
}

/// Whether the episode has a line of `code` with positive units (a per diem
/// spanning the date counts).
fn covered_by(p: &Patient, d: Date, code: &str, episode_lines: &[usize]) -> bool {
    net(p, d, code) > 0.0 || episode_lines.iter().any(|&j| p.lines[j].hcpcs == code && p.lines[j].units > 0.0)
}

pub fn premed_not_billed(p: &Patient, ctx: &Ctx) -> RuleOutput {
    let mut out = RuleOutput::default();
    for a in &p.admins {
        if !ctx.in_range(a.date) || !ctx.policy.drugs.get(a.drug.as_str()).is_some_and(|d| d.premedication_billed) {
            continue;
        }
        let has = p.net.day(a.date).iter().any(|((_, c), n)| *n > 0.0 && ctx.policy.in_group(c, "steroid_premed"));
        if has {
            out.evaluated += 1;
            continue;
        }
        // A pharmacy revenue line without HCPCS that day may be the steroid.
        if p.uncoded_drug_days.binary_search(&a.date).is_ok() {
            out.not_evaluable += 1;
            continue;
        }
        out.evaluated += 1;
        if let Some(i) = a.anchor {
            out.flag(
                "PREMED_NOT_BILLED",
                p,
                ctx,
                i,
                format!(
                    "{} infusion on {} has no steroid premedication line that day; the label calls for methylprednisolone 100 mg IV (or equivalent) before each infusion",
                    a.drug, a.date
                ),
                with_supply(p, a, json!({"drug_code": a.drug, "administration_date": a.date, "steroid_codes_checked": steroid_codes(ctx)})),
            );
        }
    }
    out
}

fn steroid_codes(ctx: &Ctx) -> Vec<String> {
    let mut v: Vec<String> = ctx.policy.hcpcs.keys().filter(|c| ctx.policy.in_group(c, "steroid_premed")).cloned().collect();
    v.sort();
    v
}

pub fn formulation_conflict(p: &Patient, ctx: &Ctx) -> RuleOutput {
    let mut out = RuleOutput::default();
    // A pharmacy-supplied administration has no drug line to conflict.
    for a in p.admins.iter().filter(|a| a.supply == Supply::Medical) {
        if !ctx.in_range(a.date) {
            continue;
        }
        out.evaluated += 1;
        if a.drugs_that_day.len() > 1 {
            let nets: Vec<serde_json::Value> =
                a.drugs_that_day.iter().map(|c| json!({"code": c, "net_units": net(p, a.date, c)})).collect();
            for code in &a.drugs_that_day {
                for i in lines_of(p, a.date, code) {
                    out.flag(
                        "FORMULATION_CONFLICT",
                        p,
                        ctx,
                        i,
                        format!(
                            "{} both billed with net units on {}; one infusion is either IV or subcutaneous, not both",
                            a.drugs_that_day.join(" and "),
                            a.date
                        ),
                        json!({"administration_date": a.date, "drugs": nets}),
                    );
                }
            }
        }
    }
    out
}
