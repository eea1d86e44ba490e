//! The result rows a run writes per person: episodes (episodes.parquet) and
//! home-infusion timeline lines (timeline.parquet), with their output order
//! and their spill encoding (a spilled run spools them to disk, `spill`).

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::model::{Date, Severity, Text};
use crate::spill::Record;
use crate::spill::codec::{self, Damaged, Reader};

/// One episode row of episodes.parquet.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpisodeRow {
    pub episode_id: String,
    pub person_id: Text,
    pub administration_date: Date,
    pub drug_code: Text,
    pub dose_units: f64,
    pub dose_sequence: u32,
    #[serde(with = "crate::util::static_str")]
    pub phase: crate::util::StaticStr,
    /// `medical` or `pharmacy`: which benefit paid for the drug.
    #[serde(with = "crate::util::static_str")]
    pub supply: crate::util::StaticStr,
    /// The pharmacy claim of the dispense that supplied the dose, or that was
    /// matched to this medical administration (a cross-benefit duplicate).
    pub dispense_claim_id: Option<Text>,
    pub days_since_previous: Option<i32>,
    pub previous_administration_date: Option<Date>,
    pub line_count: u32,
    /// Comma-separated, sorted, unique.
    pub claim_ids: Text,
    pub finding_count: u32,
    pub max_severity: Option<Severity>,
}

/// A home-infusion line (per diem, nursing) of an audited person, active
/// after reversals: the rows of timeline.parquet, the lines beneath the doses
/// on report.html's timelines, and what `explain` shows.
#[derive(Debug, Clone)]
pub struct TimelineLine {
    pub person_id: Text,
    pub service_date: Date,
    pub end_date: Option<Date>,
    pub hcpcs_code: Text,
    pub units: f64,
    pub claim_id: Text,
    pub claim_line_number: i64,
    /// per_diem or nursing.
    pub role: &'static str,
    /// The episode the line belongs to: its administration date and the
    /// index of its drug family in the policy (`episode_id` is made when
    /// written, not held per line).
    pub episode: Option<(Date, u16)>,
}

/// Interned values of the `&'static str` fields, by position.
const PHASES: [&str; 3] = ["initiation_first", "initiation_second", "maintenance"];
const SUPPLIES: [&str; 2] = ["medical", "pharmacy"];
const ROLES: [&str; 3] = ["per_diem", "nursing", "other"];
const SEVERITIES: [Severity; 3] = [Severity::Info, Severity::Warning, Severity::Error];

fn index_of(all: &[&str], v: &str) -> u8 {
    all.iter().position(|x| *x == v).unwrap_or(all.len()) as u8
}

fn static_of(all: &[&'static str], r: &mut Reader) -> Result<&'static str, Damaged> {
    let i = r.u8()? as usize;
    all.get(i).copied().ok_or(Damaged(i))
}

fn opt_i32(b: &mut Vec<u8>, v: Option<i32>) {
    codec::opt_date(b, v.map(Date));
}

impl Record for EpisodeRow {
    fn put(&self, b: &mut Vec<u8>) {
        codec::text(b, &self.person_id);
        codec::text(b, &self.episode_id);
        codec::date(b, self.administration_date);
        codec::text(b, &self.drug_code);
        codec::f64_(b, self.dose_units);
        codec::varint(b, u64::from(self.dose_sequence));
        b.push(index_of(&PHASES, self.phase));
        b.push(index_of(&SUPPLIES, self.supply));
        codec::opt_text(b, self.dispense_claim_id.as_deref());
        opt_i32(b, self.days_since_previous);
        codec::opt_date(b, self.previous_administration_date);
        codec::varint(b, u64::from(self.line_count));
        codec::text(b, &self.claim_ids);
        codec::varint(b, u64::from(self.finding_count));
        b.push(self.max_severity.map_or(u8::MAX, |s| s as u8));
    }

    fn get(r: &mut Reader) -> Result<Self, Damaged> {
        let person_id = r.text()?;
        Ok(EpisodeRow {
            episode_id: r.text()?.to_string(),
            person_id,
            administration_date: r.date()?,
            drug_code: r.text()?,
            dose_units: r.f64()?,
            dose_sequence: r.u32()?,
            phase: static_of(&PHASES, r)?,
            supply: static_of(&SUPPLIES, r)?,
            dispense_claim_id: r.opt_text()?,
            days_since_previous: r.opt_date()?.map(|d| d.0),
            previous_administration_date: r.opt_date()?,
            line_count: r.u32()?,
            claim_ids: r.text()?,
            finding_count: r.u32()?,
            max_severity: match r.u8()? {
                u8::MAX => None,
                i => Some(*SEVERITIES.get(i as usize).ok_or(Damaged(0))?),
            },
        })
    }

    /// By person, date, then episode id (unique).
    fn order(&self, o: &Self) -> Ordering {
        (&self.person_id, self.administration_date, &self.episode_id).cmp(&(&o.person_id, o.administration_date, &o.episode_id))
    }

    fn person_id(&self) -> &str {
        &self.person_id
    }
}

impl Record for TimelineLine {
    fn put(&self, b: &mut Vec<u8>) {
        codec::text(b, &self.person_id);
        codec::date(b, self.service_date);
        codec::opt_date(b, self.end_date);
        codec::text(b, &self.hcpcs_code);
        codec::f64_(b, self.units);
        codec::text(b, &self.claim_id);
        b.extend_from_slice(&self.claim_line_number.to_le_bytes());
        b.push(index_of(&ROLES, self.role));
        match self.episode {
            None => b.push(0),
            Some((d, fam)) => {
                b.push(1);
                codec::date(b, d);
                codec::varint(b, u64::from(fam));
            }
        }
    }

    fn get(r: &mut Reader) -> Result<Self, Damaged> {
        Ok(TimelineLine {
            person_id: r.text()?,
            service_date: r.date()?,
            end_date: r.opt_date()?,
            hcpcs_code: r.text()?,
            units: r.f64()?,
            claim_id: r.text()?,
            claim_line_number: r.i64()?,
            role: static_of(&ROLES, r)?,
            episode: match r.u8()? {
                0 => None,
                _ => Some((r.date()?, u16::try_from(r.varint()?).map_err(|_| Damaged(0))?)),
            },
        })
    }

    /// By person only: a person's lines keep the order evaluation gave them.
    fn order(&self, o: &Self) -> Ordering {
        self.person_id.cmp(&o.person_id)
    }

    fn person_id(&self) -> &str {
        &self.person_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: Record + std::fmt::Debug>(x: &T) -> String {
        let mut b = Vec::new();
        x.put(&mut b);
        let mut r = Reader::new(&b);
        let y = T::get(&mut r).expect("decodes");
        assert!(r.done());
        format!("{y:?}")
    }

    #[test]
    fn result_rows_survive_the_spool() {
        let e = EpisodeRow {
            episode_id: "P0001:2025-01-02:ocrelizumab".into(),
            person_id: Text::new("P0001"),
            administration_date: Date(20_000),
            drug_code: Text::new("J2350"),
            dose_units: 300.0,
            dose_sequence: 2,
            phase: "initiation_second",
            supply: "pharmacy",
            dispense_claim_id: Some(Text::new("RX9")),
            days_since_previous: Some(-3),
            previous_administration_date: None,
            line_count: 4,
            claim_ids: Text::new("C1,C2"),
            finding_count: 1,
            max_severity: Some(Severity::Warning),
        };
        assert_eq!(round_trip(&e), format!("{e:?}"));
        let none = EpisodeRow { max_severity: None, dispense_claim_id: None, days_since_previous: None, ..e };
        assert_eq!(round_trip(&none), format!("{none:?}"));
        let t = TimelineLine {
            person_id: Text::new("P0001"),
            service_date: Date(20_000),
            end_date: Some(Date(20_001)),
            hcpcs_code: Text::new("S9379"),
            units: 1.0,
            claim_id: Text::new("C1"),
            claim_line_number: 3,
            role: "per_diem",
            episode: Some((Date(20_000), 1)),
        };
        assert_eq!(round_trip(&t), format!("{t:?}"));
        let bare = TimelineLine { episode: None, end_date: None, role: "nursing", ..t };
        assert_eq!(round_trip(&bare), format!("{bare:?}"));
    }
}
