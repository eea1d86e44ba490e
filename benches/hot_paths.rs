//! Criterion benches for the hot paths: CSV scan, Parquet scan, and
//! per-patient rule evaluation. Inputs come from the generator.

use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use claims_audit::columns::ColumnMap;
use claims_audit::episodes::{PharmacySide, build_patient, net_reversals};
use claims_audit::generate::{GenFormat, GenOptions, generate};
use claims_audit::ingest::{Format, ScanSpec, csv_fast, parquet_fast};
use claims_audit::model::Line;
use claims_audit::policy::Policy;
use claims_audit::rules::{Ctx, evaluate};

const LINES: u64 = 300_000;

fn make(dir: &Path, name: &str, format: GenFormat, dense: bool) -> std::path::PathBuf {
    let out = dir.join(name);
    let cohort = if dense { 0 } else { 2_000 };
    generate(&GenOptions { lines: LINES, cohort, seed: 1, format, dense, out: out.clone(), pharmacy: None }).expect("generate");
    out
}

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = Policy::default_policy().expect("policy");
    let columns = ColumnMap::default();
    let spec = ScanSpec::new(&policy, &columns);
    let csv = make(dir.path(), "g.csv", GenFormat::Csv, false);
    let pq = make(dir.path(), "g.parquet", GenFormat::Parquet, false);
    let dense = make(dir.path(), "d.csv", GenFormat::Csv, true);

    let mut g = c.benchmark_group("scan");
    g.sample_size(10);
    g.throughput(Throughput::Elements(LINES));
    g.bench_function("csv_fast_300k", |b| b.iter(|| csv_fast::read(&csv, Format::Csv, 0, &spec, &|_| {}).expect("csv")));
    g.bench_function("parquet_fast_300k", |b| b.iter(|| parquet_fast::read(&pq, 0, &spec, &|_| {}).expect("parquet")));
    g.finish();

    let lines: Vec<Line> = csv_fast::read(&dense, Format::Csv, 0, &spec, &|_| {}).expect("dense").into_chunks().concat();
    let mut by_person: std::collections::BTreeMap<&str, Vec<&Line>> = Default::default();
    for l in &lines {
        by_person.entry(l.person_id.as_str()).or_default().push(l);
    }
    let groups: Vec<Vec<&Line>> = by_person.into_values().collect();
    let horizon = groups.iter().flatten().map(|l| l.service_date).max().unwrap_or_default();
    let ctx = Ctx { policy: &policy, from: None, to: None, horizon, pharmacy_input: false };
    let mut g = c.benchmark_group("rules");
    g.sample_size(10);
    g.throughput(Throughput::Elements(LINES));
    g.bench_function("evaluate_dense_300k_lines", |b| {
        b.iter(|| {
            let mut n = 0;
            for grp in &groups {
                let active = net_reversals(grp.clone()).active;
                let p = build_patient(grp[0].person_id.clone(), active, PharmacySide::default(), &policy);
                n += evaluate(&p, &ctx).0.len();
            }
            n
        })
    });
    g.finish();
}

criterion_group!(hot, benches);
criterion_main!(hot);
