//! The output tables' columns, defined once: names, types and values of
//! findings, resolved, episodes, timeline, rejects and rule tallies. The
//! command line writes them as Parquet, the Python package hands them over
//! as Arrow; both convert these to the same record batches, so the two
//! cannot drift apart.

use std::borrow::Cow;

use crate::history::FindingRow;
use crate::ingest::RejectRow;
use crate::model::{Date, Severity};
use crate::policy::Policy;
use crate::results::{EpisodeRow, TimelineLine};
use crate::rules::{RULES, Tally};

/// One column's values. Strings borrow from the results where they can.
#[derive(Debug, Clone, PartialEq)]
pub enum Values<'a> {
    Str(Vec<Option<Cow<'a, str>>>),
    I64(Vec<Option<i64>>),
    I32(Vec<Option<i32>>),
    F64(Vec<Option<f64>>),
    /// Days since 1970-01-01.
    Date(Vec<Option<i32>>),
}

impl Values<'_> {
    pub fn len(&self) -> usize {
        match self {
            Values::Str(v) => v.len(),
            Values::I64(v) => v.len(),
            Values::I32(v) | Values::Date(v) => v.len(),
            Values::F64(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Named columns of equal length, in output order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table<'a> {
    pub columns: Vec<(&'static str, Values<'a>)>,
}

impl<'a> Table<'a> {
    fn col(mut self, name: &'static str, v: Values<'a>) -> Self {
        self.columns.push((name, v));
        self
    }

    /// Puts a column at position `at` (the diff's `side`).
    pub fn insert(&mut self, at: usize, name: &'static str, v: Values<'a>) {
        self.columns.insert(at, (name, v));
    }

    /// Replaces the values of a column by name.
    pub fn set(&mut self, name: &'static str, v: Values<'a>) {
        if let Some(c) = self.columns.iter_mut().find(|c| c.0 == name) {
            c.1 = v;
        }
    }

    pub fn height(&self) -> usize {
        self.columns.first().map_or(0, |c| c.1.len())
    }
}

fn s<'a, T>(rows: &'a [T], f: impl Fn(&'a T) -> &'a str) -> Values<'a> {
    Values::Str(rows.iter().map(|x| Some(Cow::Borrowed(f(x)))).collect())
}

fn opt_s<'a, T>(rows: &'a [T], f: impl Fn(&'a T) -> Option<&'a str>) -> Values<'a> {
    Values::Str(rows.iter().map(|x| f(x).map(Cow::Borrowed)).collect())
}

fn owned<'a, T>(rows: &'a [T], f: impl Fn(&'a T) -> String) -> Values<'a> {
    Values::Str(rows.iter().map(|x| Some(Cow::Owned(f(x)))).collect())
}

fn same<'a>(v: &'a str, n: usize) -> Values<'a> {
    Values::Str(vec![Some(Cow::Borrowed(v)); n])
}

fn date<T>(rows: &[T], f: impl Fn(&T) -> Option<Date>) -> Values<'static> {
    Values::Date(rows.iter().map(|x| f(x).map(|d| d.0)).collect())
}

/// findings.parquet's columns, for any rows of it (tonight's, resolved ones,
/// a diff's).
pub fn findings<'a>(run_id: &'a str, f: &'a [&'a FindingRow]) -> Table<'a> {
    Table::default()
        .col("run_id", same(run_id, f.len()))
        .col("finding_id", s(f, |x| &x.finding_id))
        .col("status", s(f, |x| &x.status))
        .col("first_seen", date(f, |x| Some(x.first_seen)))
        .col("rule_id", s(f, |x| &x.rule_id))
        .col("category", s(f, |x| &x.category))
        .col("severity", s(f, |x| &x.severity))
        .col("person_id", s(f, |x| &x.person_id))
        .col("claim_id", s(f, |x| &x.claim_id))
        .col("claim_line_number", Values::I64(f.iter().map(|x| Some(x.claim_line_number)).collect()))
        .col("service_date", date(f, |x| Some(x.service_date)))
        .col("hcpcs_code", s(f, |x| &x.hcpcs_code))
        .col("episode_id", opt_s(f, |x| x.episode_id.as_deref()))
        .col("message", s(f, |x| &x.message))
        .col("evidence", s(f, |x| &x.evidence))
        .col("rule_version", s(f, |x| &x.rule_version))
        .col("source_file", s(f, |x| &x.source_file))
        .col("source_line", Values::I64(f.iter().map(|x| Some(x.source_line)).collect()))
        .col("units", Values::F64(f.iter().map(|x| Some(x.units)).collect()))
        .col("paid_amount", Values::F64(f.iter().map(|x| x.paid_amount).collect()))
        .col("allowed_amount", Values::F64(f.iter().map(|x| x.allowed_amount).collect()))
        .col("amount_at_stake", Values::F64(f.iter().map(|x| x.amount_at_stake).collect()))
        .col("payer_program", opt_s(f, |x| x.payer_program.as_deref()))
        .col("rendering_npi", opt_s(f, |x| x.rendering_npi.as_deref()))
        .col("billing_npi", opt_s(f, |x| x.billing_npi.as_deref()))
}

/// resolved.parquet: findings columns plus why and when each was resolved.
pub fn resolved<'a>(run_id: &'a str, rows: &'a [&'a FindingRow], reasons: Vec<&'static str>, run_date: Date) -> Table<'a> {
    let n = rows.len();
    findings(run_id, rows)
        .col("resolved_reason", Values::Str(reasons.into_iter().map(|r| Some(Cow::Borrowed(r))).collect()))
        .col("resolved_on", Values::Date(vec![Some(run_date.0); n]))
}

pub fn episodes(e: &[EpisodeRow]) -> Table<'_> {
    Table::default()
        .col("episode_id", s(e, |x| &x.episode_id))
        .col("person_id", s(e, |x| x.person_id.as_str()))
        .col("administration_date", date(e, |x| Some(x.administration_date)))
        .col("drug_code", s(e, |x| x.drug_code.as_str()))
        .col("dose_units", Values::F64(e.iter().map(|x| Some(x.dose_units)).collect()))
        .col("dose_sequence", Values::I32(e.iter().map(|x| Some(x.dose_sequence as i32)).collect()))
        .col("phase", s(e, |x| x.phase))
        .col("days_since_previous", Values::I32(e.iter().map(|x| x.days_since_previous).collect()))
        .col("previous_administration_date", date(e, |x| x.previous_administration_date))
        .col("line_count", Values::I32(e.iter().map(|x| Some(x.line_count as i32)).collect()))
        .col("claim_ids", s(e, |x| x.claim_ids.as_str()))
        .col("finding_count", Values::I32(e.iter().map(|x| Some(x.finding_count as i32)).collect()))
        .col("max_severity", opt_s(e, |x| x.max_severity.map(Severity::as_str)))
        .col("supply", s(e, |x| x.supply))
        .col("dispense_claim_id", opt_s(e, |x| x.dispense_claim_id.as_deref()))
}

/// timeline.parquet: every home-infusion line (per diem, nursing) of an
/// audited person, active after reversals.
pub fn timeline<'a>(t: &'a [TimelineLine], policy: &Policy) -> Table<'a> {
    let episode =
        |x: &TimelineLine| x.episode.map(|(d, fam)| Cow::Owned(crate::episodes::episode_id(&x.person_id, d, policy.family_name(fam))));
    Table::default()
        .col("person_id", s(t, |x| x.person_id.as_str()))
        .col("service_date", date(t, |x| Some(x.service_date)))
        .col("end_date", date(t, |x| x.end_date))
        .col("hcpcs_code", s(t, |x| x.hcpcs_code.as_str()))
        .col("units", Values::F64(t.iter().map(|x| Some(x.units)).collect()))
        .col("role", s(t, |x| x.role))
        .col("claim_id", s(t, |x| x.claim_id.as_str()))
        .col("claim_line_number", Values::I64(t.iter().map(|x| Some(x.claim_line_number)).collect()))
        .col("episode_id", Values::Str(t.iter().map(episode).collect()))
}

/// rejects.parquet; `source` names file `i` of the run.
pub fn rejects<'a>(j: &'a [RejectRow], source: impl Fn(u32) -> String) -> Table<'a> {
    Table::default()
        .col("source_file", owned(j, |x| source(x.file)))
        .col("source_line", Values::I64(j.iter().map(|x| Some(x.source_line as i64)).collect()))
        .col("reason_code", s(j, |x| x.code))
        .col("reason", s(j, |x| &x.reason))
        .col("raw_text", s(j, |x| &x.raw_text))
}

/// Per-rule counts (the manifest's `rules`), one row per catalogue rule.
pub fn tallies<'a>(policy: &Policy, t: &'a [Tally]) -> Table<'a> {
    let sev = |id: &str| policy.severity(id).map(|s| Cow::Borrowed(s.as_str()));
    let n = |f: fn(&Tally) -> u64| Values::I64(t.iter().map(|x| Some(f(x) as i64)).collect());
    Table::default()
        .col("rule_id", Values::Str(RULES.iter().map(|r| Some(Cow::Borrowed(r.id))).collect()))
        .col("category", Values::Str(RULES.iter().map(|r| Some(Cow::Borrowed(r.category))).collect()))
        .col("severity", Values::Str(RULES.iter().map(|r| sev(r.id)).collect()))
        .col("evaluated", n(|x| x.evaluated))
        .col("flagged", n(|x| x.flagged))
        .col("not_evaluable", n(|x| x.not_evaluable))
}

/// The table as one Arrow record batch (the output files' row groups, the
/// Python package's results); number columns move into it uncopied.
#[cfg(feature = "arrow")]
pub fn to_record_batch(t: Table) -> crate::error::Result<arrow_array::RecordBatch> {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Date32Array, Float64Array, Int32Array, Int64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema};

    let mut fields = Vec::with_capacity(t.columns.len());
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(t.columns.len());
    for (name, v) in t.columns {
        let (dt, a): (DataType, ArrayRef) = match v {
            Values::Str(v) => (DataType::Utf8, Arc::new(v.iter().map(|x| x.as_deref()).collect::<StringArray>())),
            Values::I64(v) => (DataType::Int64, Arc::new(Int64Array::from(v))),
            Values::I32(v) => (DataType::Int32, Arc::new(Int32Array::from(v))),
            Values::F64(v) => (DataType::Float64, Arc::new(Float64Array::from(v))),
            Values::Date(v) => (DataType::Date32, Arc::new(Date32Array::from(v))),
        };
        fields.push(Field::new(name, dt, true));
        arrays.push(a);
    }
    arrow_array::RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
        .map_err(|e| crate::error::Error::Internal(format!("building a result table: {e}")))
}
