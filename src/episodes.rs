//! One patient, ready for the rules: reversals netted, administrations found
//! (from drug lines, and from pharmacy dispenses a nursing visit used),
//! dispenses matched to medical administrations, and episodes.

use std::collections::BTreeMap;

use crate::model::codes::display_units;
use crate::model::text::{PrefixKey, prefix_cmp, prefix_key};
use crate::model::{Date, Dispense, Line, Text};
use crate::policy::{CodeEntry, Dosing, Drug, Policy};

const EPS: f64 = 1e-9;

/// One patient's lines after reversals, with net units and administrations.
#[derive(Debug)]
pub struct Patient<'a> {
    pub person_id: Text,
    /// Active lines (not voided), sorted by (service_date, hcpcs, claim_id, claim_line_number).
    pub lines: Vec<&'a Line>,
    /// What the policy says of each line's code, looked up once per line
    /// rather than once per rule that reads it.
    pub codes: Vec<LineCodes<'a>>,
    /// Net units per (date, code).
    pub net: NetUnits,
    /// Administrations in (date, family) order.
    pub admins: Vec<Administration>,
    /// Episode (index into `admins`) each line belongs to, if any.
    pub episode_of: Vec<Option<usize>>,
    /// Dispenses (pharmacy benefit) with net mg > 0, in (date, drug) order.
    pub dispenses: Vec<NetDispense<'a>>,
    /// Dates with a pharmacy revenue line without HCPCS code, sorted, unique.
    pub uncoded_drug_days: Vec<Date>,
}

/// A line's code in the policy: its code-table entry, its drug and its
/// role on the timeline (`Policy::role_of`).
#[derive(Debug, Clone, Copy)]
pub struct LineCodes<'a> {
    pub entry: Option<&'a CodeEntry>,
    pub drug: Option<&'a Drug>,
    pub role: &'static str,
}

impl<'a> LineCodes<'a> {
    pub fn of(policy: &'a Policy, code: &str) -> LineCodes<'a> {
        LineCodes { entry: policy.hcpcs.get(code), drug: policy.drugs.get(code), role: policy.role_of(code) }
    }

    /// Whether some rule reads the code (`Policy::policy_codes`: drugs and
    /// the code table).
    pub fn in_policy(&self) -> bool {
        self.entry.is_some() || self.drug.is_some()
    }

    /// Whether the code is in a code-table group (`Policy::in_group`).
    pub fn in_group(&self, group: &str) -> bool {
        self.entry.is_some_and(|c| c.groups.iter().any(|g| g == group))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    InitiationFirst,
    InitiationSecond,
    Maintenance,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::InitiationFirst => "initiation_first",
            Phase::InitiationSecond => "initiation_second",
            Phase::Maintenance => "maintenance",
        }
    }
}

/// Which benefit paid for the drug of an administration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Supply {
    /// A J-code drug line on a medical claim.
    Medical,
    /// A pharmacy dispense, administered at a nursing visit.
    Pharmacy,
}

impl Supply {
    pub fn as_str(self) -> &'static str {
        match self {
            Supply::Medical => "medical",
            Supply::Pharmacy => "pharmacy",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Administration {
    pub episode_id: String,
    pub date: Date,
    pub family: Text,
    pub drug: Text,
    pub dose: f64,
    /// Drug codes of this family with net units > 0 that day (medical).
    pub drugs_that_day: Vec<Text>,
    /// 1-based sequence within the family.
    pub sequence: u32,
    pub phase: Phase,
    pub previous: Option<Date>,
    /// For an initiation's first half: index of its second half, if found.
    pub second_half: Option<usize>,
    /// Lines of the episode (indices into `Patient::lines`).
    pub line_idx: Vec<usize>,
    pub supply: Supply,
    /// Index into `Patient::dispenses`: the dispense that supplied it
    /// (pharmacy), or the one it was matched to (medical: paid twice).
    pub dispense: Option<usize>,
    /// The line findings about this administration sit on: its first drug
    /// line (medical) or its first nursing visit line (pharmacy).
    pub anchor: Option<usize>,
}

impl Administration {
    pub fn days_since_previous(&self) -> Option<i32> {
        self.previous.map(|p| self.date.days_since(p))
    }
}

/// What became of a dispense.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DispenseUse {
    /// Supplied no administration: no finding, counted in the manifest.
    Unused,
    /// Matched to a medical administration of the same drug family.
    Matched,
    /// Supplied an administration at a nursing visit.
    Supplied,
}

/// The net of a person's pharmacy rows of one drug on one dispensing date.
#[derive(Debug, Clone)]
pub struct NetDispense<'a> {
    pub date: Date,
    pub drug: Text,
    pub family: Text,
    pub quantity: f64,
    pub mg: f64,
    /// Active rows (not voided), by claim id and line number.
    pub rows: Vec<&'a Dispense>,
    pub used: DispenseUse,
}

impl NetDispense<'_> {
    /// Paid amount of the active rows, when any row has one.
    pub fn paid_amount(&self) -> Option<f64> {
        self.rows.iter().filter_map(|r| r.paid_amount).reduce(|a, b| a + b)
    }

    /// The dispense as evidence: claims, date, NDCs, quantity, mg, paid.
    pub fn evidence(&self) -> serde_json::Value {
        let mut ndcs: Vec<String> = self.rows.iter().map(|r| crate::model::codes::dashed_ndc(&r.ndc)).collect();
        ndcs.dedup();
        serde_json::json!({
            "pharmacy_claims": self.rows.iter().map(|r| serde_json::json!({"claim_id": r.claim_id, "claim_line_number": r.claim_line_number})).collect::<Vec<_>>(),
            "dispensing_date": self.date,
            "ndc": ndcs,
            "quantity": self.quantity,
            "mg": self.mg,
            "paid_amount": self.paid_amount(),
        })
    }
}

/// Net units per (date, code), sorted; looked up without allocating.
#[derive(Debug, Default)]
pub struct NetUnits(Vec<((Date, Text), f64)>);

impl NetUnits {
    /// From lines sorted by (date, code).
    fn from_sorted(lines: &[&Line]) -> NetUnits {
        let mut v: Vec<((Date, Text), f64)> = Vec::new();
        for l in lines {
            match v.last_mut() {
                Some(((d, c), n)) if *d == l.service_date && *c == l.hcpcs => *n += l.units,
                _ => v.push(((l.service_date, l.hcpcs.clone()), l.units)),
            }
        }
        NetUnits(v)
    }

    pub fn get(&self, d: Date, code: &str) -> f64 {
        self.0.binary_search_by(|((x, c), _)| (*x, c.as_str()).cmp(&(d, code))).map(|i| self.0[i].1).unwrap_or(0.0)
    }

    /// Entries of one date.
    pub fn day(&self, d: Date) -> &[((Date, Text), f64)] {
        let a = self.0.partition_point(|((x, _), _)| *x < d);
        let b = self.0.partition_point(|((x, _), _)| *x <= d);
        &self.0[a..b]
    }

    pub fn iter(&self) -> impl Iterator<Item = (&(Date, Text), &f64)> {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

/// What reversal netting needs of a row: the group it nets within (date and
/// code or NDC), its order inside the group, its signed amount, and where it
/// came from (for the reject of a reversal that voids nothing).
pub trait Reversible {
    fn group(&self) -> (Date, &str);
    fn order(&self) -> (&str, i64, u32, u64);
    fn amount(&self) -> f64;
    /// File, source line and raw text.
    fn origin(&self) -> (u32, u64, Option<&str>);
    /// Why a reversal of this row voids nothing, in words.
    fn unmatched_reason(&self) -> String;
}

impl Reversible for Line {
    fn group(&self) -> (Date, &str) {
        (self.service_date, &self.hcpcs)
    }
    fn order(&self) -> (&str, i64, u32, u64) {
        (&self.claim_id, self.claim_line_number, self.file, self.source_line)
    }
    fn amount(&self) -> f64 {
        self.units
    }
    fn origin(&self) -> (u32, u64, Option<&str>) {
        (self.file, self.source_line, self.raw.as_deref())
    }
    fn unmatched_reason(&self) -> String {
        format!(
            "reversal of {} units of {} on {} matches no earlier line of the same person, date, code and units",
            display_units(-self.units),
            self.hcpcs,
            self.service_date
        )
    }
}

impl Reversible for Dispense {
    fn group(&self) -> (Date, &str) {
        (self.date, &self.ndc)
    }
    fn order(&self) -> (&str, i64, u32, u64) {
        (&self.claim_id, self.claim_line_number, self.file, self.source_line)
    }
    fn amount(&self) -> f64 {
        self.quantity
    }
    fn origin(&self) -> (u32, u64, Option<&str>) {
        (self.file, self.source_line, self.raw.as_deref())
    }
    fn unmatched_reason(&self) -> String {
        format!(
            "reversal of quantity {} of NDC {} dispensed {} matches no dispense of the same person, date, NDC and quantity",
            display_units(-self.quantity),
            self.ndc,
            self.date
        )
    }
}

/// A person's rows after netting.
pub struct Netted<'a, T> {
    /// Rows not voided, sorted by group then order.
    pub active: Vec<&'a T>,
    /// Reversals that match no row: rejects.
    pub unmatched: Vec<&'a T>,
    /// Positive rows a reversal voided (a finding on one is `line_reversed`).
    pub voided: Vec<&'a T>,
}

/// Voids each reversal (negative amount) against a positive row of the same
/// group (person, date, code: medical lines; person, date, NDC: dispenses)
/// with the same absolute amount.
pub fn net_reversals<'a, T: Reversible>(rows: Vec<&'a T>) -> Netted<'a, T> {
    let rows = in_netting_order(rows);
    if rows.iter().all(|r| r.amount() >= 0.0) {
        return Netted { active: rows, unmatched: Vec::new(), voided: Vec::new() };
    }
    let mut voided = vec![false; rows.len()];
    let mut unmatched = Vec::new();
    for group in rows.chunk_by(|a, b| a.group() == b.group()).scan(0, |start, g| {
        let range = *start..*start + g.len();
        *start += g.len();
        Some(range)
    }) {
        for i in group.clone() {
            if rows[i].amount() >= 0.0 {
                continue;
            }
            voided[i] = true;
            let want = -rows[i].amount();
            match group.clone().find(|&j| !voided[j] && rows[j].amount() > 0.0 && (rows[j].amount() - want).abs() < EPS) {
                Some(j) => voided[j] = true,
                None => unmatched.push(rows[i]),
            }
        }
    }
    let (mut active, mut originals) = (Vec::with_capacity(rows.len()), Vec::new());
    for (r, v) in rows.into_iter().zip(voided) {
        match (v, r.amount() > 0.0) {
            (false, _) => active.push(r),
            (true, true) => originals.push(r),
            (true, false) => {}
        }
    }
    Netted { active, unmatched, voided: originals }
}

/// Rows sorted by (group, order), stably. The texts' prefix keys are taken
/// once per row, so most comparisons read no text (the sort was 4% of a
/// dense audit's CPU, comparing texts).
fn in_netting_order<T: Reversible>(rows: Vec<&T>) -> Vec<&T> {
    if rows.len() < 2 {
        return rows;
    }
    let mut keyed: Vec<((Date, PrefixKey, PrefixKey), &T)> = rows
        .into_iter()
        .map(|r| {
            let ((date, code), (claim, ..)) = (r.group(), r.order());
            ((date, prefix_key(code), prefix_key(claim)), r)
        })
        .collect();
    keyed.sort_by(|(ka, a), (kb, b)| {
        ka.0.cmp(&kb.0)
            .then_with(|| prefix_cmp(ka.1, kb.1, a.group().1, b.group().1))
            .then_with(|| prefix_cmp(ka.2, kb.2, a.order().0, b.order().0))
            .then_with(|| {
                let ((_, line_a, file_a, at_a), (_, line_b, file_b, at_b)) = (a.order(), b.order());
                (line_a, file_a, at_a).cmp(&(line_b, file_b, at_b))
            })
    });
    keyed.into_iter().map(|(_, r)| r).collect()
}

/// `person:YYYY-MM-DD:family`, built without `format!` (one per episode
/// and per timeline row).
pub fn episode_id(person: &str, date: Date, family: &str) -> String {
    use std::fmt::Write;
    let mut id = String::with_capacity(person.len() + family.len() + 12);
    id.push_str(person);
    // Writing to a String cannot fail.
    let _ = write!(id, ":{date}:");
    id.push_str(family);
    id
}

/// What a patient has besides medical lines: active pharmacy rows (after
/// `net_reversals`) and days of uncoded pharmacy revenue lines.
#[derive(Debug, Default)]
pub struct PharmacySide<'a> {
    pub dispenses: Vec<&'a Dispense>,
    pub uncoded_drug_days: Vec<Date>,
}

/// Builds a patient from active lines (sorted as `net_reversals` leaves them)
/// and its pharmacy side.
pub fn build_patient<'a>(person_id: Text, lines: Vec<&'a Line>, side: PharmacySide<'a>, policy: &'a Policy) -> Patient<'a> {
    let codes: Vec<LineCodes> = lines.iter().map(|l| LineCodes::of(policy, &l.hcpcs)).collect();
    let net = NetUnits::from_sorted(&lines);
    let mut admins = medical_admins(&person_id, &net, policy);
    let mut dispenses = net_dispenses(side.dispenses, policy);
    if !dispenses.is_empty() {
        match_and_supply(&person_id, &net, &mut admins, &mut dispenses, policy);
    }
    classify(&mut admins, policy);
    for a in &mut admins {
        a.anchor = anchor_line(&lines, &codes, a);
    }

    // Episode membership: lines that day, and per-diem spans covering the date.
    let mut episode_of = vec![None; lines.len()];
    for (i, l) in lines.iter().enumerate() {
        let end = if codes[i].in_group("per_diem") { l.end_date.unwrap_or(l.service_date).max(l.service_date) } else { l.service_date };
        let first = admins.partition_point(|a| a.date < l.service_date);
        for (k, a) in admins.iter_mut().enumerate().skip(first) {
            if a.date > end {
                break;
            }
            a.line_idx.push(i);
            if episode_of[i].is_none() {
                episode_of[i] = Some(k);
            }
        }
    }
    let mut uncoded_drug_days = side.uncoded_drug_days;
    uncoded_drug_days.sort();
    uncoded_drug_days.dedup();
    Patient { person_id, lines, codes, net, admins, episode_of, dispenses, uncoded_drug_days }
}

fn new_admin(person_id: &str, date: Date, family: Text, drug: Text, dose: f64, supply: Supply) -> Administration {
    Administration {
        episode_id: episode_id(person_id, date, &family),
        date,
        family,
        drugs_that_day: vec![drug.clone()],
        drug,
        dose,
        sequence: 0,
        phase: Phase::Maintenance,
        previous: None,
        second_half: None,
        line_idx: Vec::new(),
        supply,
        dispense: None,
        anchor: None,
    }
}

/// Per (date, family), the first drug in policy order with net units > 0.
fn medical_admins(person_id: &str, net: &NetUnits, policy: &Policy) -> Vec<Administration> {
    // Drug days in (date, code) order; stably by (date, family) then, so a
    // family's codes of a day stay in code order before the policy's.
    let mut days: Vec<(Date, &str, &Text)> = net
        .iter()
        .filter(|(_, units)| **units > EPS)
        .filter_map(|((d, code), _)| policy.drugs.get(code.as_str()).map(|drug| (*d, drug.family.as_str(), code)))
        .collect();
    days.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    days.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1))
        .map(|day| {
            let (date, family) = (day[0].0, day[0].1);
            let mut codes: Vec<Text> = day.iter().map(|&(_, _, c)| c.clone()).collect();
            codes.sort_by_key(|c| policy.file.drug.iter().position(|d| d.code == c.as_str()));
            let drug = codes[0].clone();
            let mut a = new_admin(person_id, date, Text::new(family), drug.clone(), net.get(date, &drug), Supply::Medical);
            a.drugs_that_day = codes;
            a
        })
        .collect()
}

/// Active pharmacy rows -> one dispense per (date, drug) with net mg > 0.
fn net_dispenses<'a>(rows: Vec<&'a Dispense>, policy: &Policy) -> Vec<NetDispense<'a>> {
    let mut by_day: BTreeMap<(Date, &str), NetDispense<'a>> = BTreeMap::new();
    for r in rows {
        let Some(info) = policy.ndc_product(&r.ndc) else { continue };
        let Some(drug) = policy.drugs.get(&info.drug) else { continue };
        let d = by_day.entry((r.date, info.drug.as_str())).or_insert_with(|| NetDispense {
            date: r.date,
            drug: Text::new(&info.drug),
            family: Text::new(&drug.family),
            quantity: 0.0,
            mg: 0.0,
            rows: Vec::new(),
            used: DispenseUse::Unused,
        });
        d.quantity += r.quantity;
        d.mg += r.quantity * info.mg_per_unit;
        d.rows.push(r);
    }
    let mut v: Vec<NetDispense<'a>> = by_day.into_values().filter(|d| d.mg > EPS).collect();
    for d in &mut v {
        d.rows.sort_by(|a, b| (&a.claim_id, a.claim_line_number).cmp(&(&b.claim_id, b.claim_line_number)));
    }
    v
}

/// RULES.md v2 "Matching" and "Pharmacy-supplied administration": medical
/// administrations in date order take the earliest unmatched dispense of
/// their family in the window before them; each dispense left over, in date
/// order, supplies the first nursing-visit day in the window after it that
/// has no administration yet.
fn match_and_supply(person_id: &str, net: &NetUnits, admins: &mut Vec<Administration>, dispenses: &mut [NetDispense], policy: &Policy) {
    let window = policy.dispense_window_days();
    for a in admins.iter_mut() {
        let lo = a.date.add_days(-window);
        let found =
            dispenses.iter().position(|d| d.used == DispenseUse::Unused && d.family == a.family && d.date >= lo && d.date <= a.date);
        if let Some(j) = found {
            dispenses[j].used = DispenseUse::Matched;
            a.dispense = Some(j);
        }
    }
    let mut visits: Vec<Date> =
        net.iter().filter(|((_, c), n)| **n > EPS && policy.in_group(c, "nursing_primary")).map(|((d, _), _)| *d).collect();
    visits.dedup();
    for (j, d) in dispenses.iter_mut().enumerate() {
        if d.used != DispenseUse::Unused {
            continue;
        }
        let hi = d.date.add_days(window);
        let start = visits.partition_point(|v| *v < d.date);
        let day = visits[start..].iter().take_while(|v| **v <= hi).find(|v| !admins.iter().any(|a| a.date == **v && a.family == d.family));
        if let Some(&day) = day {
            d.used = DispenseUse::Supplied;
            let mut a = new_admin(person_id, day, d.family.clone(), d.drug.clone(), d.mg, Supply::Pharmacy);
            a.dispense = Some(j);
            let at = admins.partition_point(|x| (x.date, &x.family) < (day, &a.family));
            admins.insert(at, a);
        }
    }
}

/// The line a finding about the administration sits on.
fn anchor_line(lines: &[&Line], codes: &[LineCodes], a: &Administration) -> Option<usize> {
    let start = lines.partition_point(|l| l.service_date < a.date);
    let mut day = (start..lines.len()).take_while(|&i| lines[i].service_date == a.date);
    match a.supply {
        Supply::Medical => day.find(|&i| lines[i].hcpcs == a.drug),
        Supply::Pharmacy => day.find(|&i| lines[i].units > 0.0 && codes[i].in_group("nursing_primary")),
    }
}

/// Sequence, phase, previous date and initiation pairs, per drug family,
/// exactly as RULES.md defines an initiation and its second half.
fn classify(admins: &mut [Administration], policy: &Policy) {
    let families: Vec<Text> = {
        let mut f: Vec<Text> = admins.iter().map(|a| a.family.clone()).collect();
        f.sort();
        f.dedup();
        f
    };
    for fam in families {
        let Some(dosing) = policy.file.dosing.get(fam.as_str()) else { continue };
        let idx: Vec<usize> = (0..admins.len()).filter(|&i| admins[i].family == fam).collect();
        for (n, &i) in idx.iter().enumerate() {
            admins[i].sequence = n as u32 + 1;
            admins[i].previous = n.checked_sub(1).map(|p| admins[idx[p]].date);
        }
        let mut n = 0;
        while n < idx.len() {
            let i = idx[n];
            if admins[i].phase == Phase::Maintenance && is_initiation(&admins[i], dosing) {
                admins[i].phase = Phase::InitiationFirst;
                if let Some(&j) = idx.get(n + 1) {
                    let within = admins[j].date.days_since(admins[i].date) <= dosing.pair_search_days;
                    let second = dosing.initiation_second_dose.unwrap_or(dosing.initiation_dose);
                    if within && is_dose(&admins[j], dosing, second) {
                        admins[j].phase = Phase::InitiationSecond;
                        admins[i].second_half = Some(j);
                        n += 1;
                    }
                }
            }
            n += 1;
        }
    }
}

fn is_dose(a: &Administration, d: &Dosing, dose: f64) -> bool {
    a.drug == d.initiation_code && (a.dose - dose).abs() < EPS
}

fn is_initiation(a: &Administration, d: &Dosing) -> bool {
    is_dose(a, d, d.initiation_dose) && a.days_since_previous().is_none_or(|days| days >= d.min_interval_days)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testkit::line;

    /// The keyed sort gives the text order of (date, code, claim, line,
    /// file, source line), whatever the texts' lengths and shared prefixes.
    #[test]
    fn netting_order_is_the_text_order() {
        let claims =
            ["C1", "C10", "C2", "CLAIM-0000000000", "CLAIM-0000000000A", "CLAIM-0000000000", "CLAIM-00000000001", "CLAIM-000000000\0"];
        let codes = ["J2350", "J235", "J23500000000000000", "J23500000000000001", "S9379"];
        let mut lines = Vec::new();
        for (i, claim) in claims.iter().enumerate() {
            for (k, code) in codes.iter().enumerate() {
                let date = if (i + k) % 3 == 0 { "2026-01-05" } else { "2026-01-04" };
                let mut l = line(date, code, if k % 2 == 0 { 1.0 } else { -1.0 });
                l.claim_id = (*claim).into();
                l.claim_line_number = (i % 2) as i64;
                l.source_line = (100 - i * 7 - k) as u64;
                lines.push(l);
            }
        }
        let rows: Vec<&Line> = lines.iter().rev().collect();
        let mut want = rows.clone();
        want.sort_by(|a, b| (a.group(), a.order()).cmp(&(b.group(), b.order())));
        let got = in_netting_order(rows);
        let at = |v: &[&Line]| v.iter().map(|l| l.source_line).collect::<Vec<_>>();
        assert_eq!(at(&got), at(&want));
    }
}
