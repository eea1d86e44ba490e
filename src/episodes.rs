//! Reversal netting, administrations and episodes for one patient.

use std::collections::BTreeMap;

use crate::date::Date;
use crate::normalize::Line;
use crate::policy::{Dosing, Policy};
use crate::text::Text;

const EPS: f64 = 1e-9;

/// One patient's lines after reversals, with net units and administrations.
#[derive(Debug)]
pub struct Patient<'a> {
    pub person_id: Text,
    /// Active lines (not voided), sorted by (service_date, hcpcs, claim_id, claim_line_number).
    pub lines: Vec<&'a Line>,
    /// Net units per (date, code).
    pub net: NetUnits,
    pub admins: Vec<Administration>,
    /// Episode (index into `admins`) each line belongs to, if any.
    pub episode_of: Vec<Option<usize>>,
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

#[derive(Debug, Clone)]
pub struct Administration {
    pub episode_id: String,
    pub date: Date,
    pub family: String,
    pub drug: String,
    pub dose: f64,
    /// Drug codes of this family with net units > 0 that day.
    pub drugs_that_day: Vec<String>,
    /// 1-based sequence within the family.
    pub sequence: u32,
    pub phase: Phase,
    pub previous: Option<Date>,
    /// For an initiation's first half: index of its second half, if found.
    pub second_half: Option<usize>,
    /// Lines of the episode (indices into `Patient::lines`).
    pub line_idx: Vec<usize>,
}

impl Administration {
    pub fn days_since_previous(&self) -> Option<i32> {
        self.previous.map(|p| self.date.days_since(p))
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

/// Lines of one person that could not be netted: reversals that match no
/// earlier line.
pub struct Unmatched<'a>(pub Vec<&'a Line>);

/// Voids each reversal against an earlier positive line of the same date and
/// code with the same absolute units; returns the active lines and the
/// reversals that matched nothing.
pub fn net_reversals<'a>(mut lines: Vec<&'a Line>) -> (Vec<&'a Line>, Unmatched<'a>) {
    lines.sort_by(|a, b| {
        (a.service_date, &a.hcpcs, &a.claim_id, a.claim_line_number, a.file, a.source_line).cmp(&(
            b.service_date,
            &b.hcpcs,
            &b.claim_id,
            b.claim_line_number,
            b.file,
            b.source_line,
        ))
    });
    if lines.iter().all(|l| l.units >= 0.0) {
        return (lines, Unmatched(Vec::new()));
    }
    let mut voided = vec![false; lines.len()];
    let mut unmatched = Vec::new();
    let mut start = 0;
    while start < lines.len() {
        let mut end = start + 1;
        while end < lines.len() && lines[end].service_date == lines[start].service_date && lines[end].hcpcs == lines[start].hcpcs {
            end += 1;
        }
        for i in start..end {
            if lines[i].units >= 0.0 {
                continue;
            }
            voided[i] = true;
            let want = -lines[i].units;
            match (start..end).find(|&j| !voided[j] && lines[j].units > 0.0 && (lines[j].units - want).abs() < EPS) {
                Some(j) => voided[j] = true,
                None => unmatched.push(i),
            }
        }
        start = end;
    }
    let unmatched_lines = unmatched.iter().map(|&i| lines[i]).collect();
    let active = lines.into_iter().zip(voided).filter(|(_, v)| !v).map(|(l, _)| l).collect();
    (active, Unmatched(unmatched_lines))
}

pub fn episode_id(person: &str, date: Date, family: &str) -> String {
    format!("{person}:{date}:{family}")
}

/// Builds a patient from active lines (sorted as `net_reversals` leaves them).
pub fn build_patient<'a>(person_id: Text, lines: Vec<&'a Line>, policy: &Policy) -> Patient<'a> {
    let net = NetUnits::from_sorted(&lines);
    // Administrations: per (date, family), the first drug in policy order with net > 0.
    let mut admins: Vec<Administration> = Vec::new();
    let mut by_date: BTreeMap<(Date, String), Vec<String>> = BTreeMap::new();
    for ((d, code), &units) in net.iter() {
        if units > EPS
            && let Some(drug) = policy.drugs.get(code.as_str())
        {
            by_date.entry((*d, drug.family.clone())).or_default().push(code.to_string());
        }
    }
    for ((date, family), mut codes) in by_date {
        let order = |c: &String| policy.file.drug.iter().position(|d| d.code == *c);
        codes.sort_by_key(order);
        let drug = codes[0].clone();
        let dose = net.get(date, &drug);
        admins.push(Administration {
            episode_id: episode_id(&person_id, date, &family),
            date,
            family,
            drug,
            dose,
            drugs_that_day: codes,
            sequence: 0,
            phase: Phase::Maintenance,
            previous: None,
            second_half: None,
            line_idx: Vec::new(),
        });
    }
    classify(&mut admins, policy);

    // Episode membership: lines that day, and per-diem spans covering the date.
    let mut episode_of = vec![None; lines.len()];
    for (i, l) in lines.iter().enumerate() {
        let end =
            if policy.in_group(&l.hcpcs, "per_diem") { l.end_date.unwrap_or(l.service_date).max(l.service_date) } else { l.service_date };
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
    Patient { person_id, lines, net, admins, episode_of }
}

/// Sequence, phase, previous date and initiation pairs, per drug family,
/// exactly as RULES.md defines an initiation and its second half.
fn classify(admins: &mut [Administration], policy: &Policy) {
    let families: Vec<String> = {
        let mut f: Vec<String> = admins.iter().map(|a| a.family.clone()).collect();
        f.sort();
        f.dedup();
        f
    };
    for fam in families {
        let Some(dosing) = policy.file.dosing.get(&fam) else { continue };
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
