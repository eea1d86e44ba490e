//! Parquet as a lake holds it (issue 27): column types checked, zoned
//! timestamps read as their own zone's date, every codec. The sample's
//! claims are written as Parquet variants here; each must give the CSV's
//! findings, or be refused in one line naming the file, column and type.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray, TimestampSecondArray};
use arrow_schema::{Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::{BrotliLevel, Compression};
use parquet::file::properties::WriterProperties;

use crate::common::*;

/// The sample's professional claims as (header, rows of text).
fn sample() -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(sample_csv()).expect("sample csv");
    let header = r.headers().expect("header").iter().map(str::to_string).collect();
    let rows = r.records().map(|rec| rec.expect("row").iter().map(str::to_string).collect()).collect();
    (header, rows)
}

/// The sample as Parquet: every column text, except those `typed` makes.
fn write(path: &Path, props: WriterProperties, typed: &dyn Fn(&str, &[String]) -> Option<ArrayRef>) -> PathBuf {
    let (header, rows) = sample();
    let mut fields = Vec::new();
    let mut cols: Vec<ArrayRef> = Vec::new();
    for (k, name) in header.iter().enumerate() {
        let values: Vec<String> = rows.iter().map(|r| r[k].clone()).collect();
        let a = typed(name, &values)
            .unwrap_or_else(|| Arc::new(values.iter().map(|v| (!v.is_empty()).then_some(v.as_str())).collect::<StringArray>()));
        fields.push(Field::new(name, a.data_type().clone(), true));
        cols.push(a);
    }
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).expect("batch");
    let mut w = ArrowWriter::try_new(std::fs::File::create(path).expect("create"), batch.schema(), Some(props)).expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");
    path.to_path_buf()
}

/// A text column as `list<string>`: each value a one-element list.
fn as_list(values: &[String]) -> ArrayRef {
    let mut b = ListBuilder::new(StringBuilder::new());
    for v in values {
        b.values().append_value(v);
        b.append(true);
    }
    Arc::new(b.finish())
}

/// A `YYYY-MM-DD` column as timestamps in zone `tz` at `hour` local time
/// (the local offset `offset_h` hours east of UTC), so the UTC date differs
/// from the local one when `hour - offset_h` leaves the day.
fn as_timestamps(values: &[String], tz: &str, hour: i64, offset_h: i64) -> ArrayRef {
    Arc::new(seconds(values, hour, offset_h).map(|s| s.map(|s| s * 1_000_000)).collect::<TimestampMicrosecondArray>().with_timezone(tz))
}

/// The UTC seconds of each date at `hour` local time.
fn seconds(values: &[String], hour: i64, offset_h: i64) -> impl Iterator<Item = Option<i64>> + '_ {
    values.iter().map(move |v| claims_audit::model::Date::parse(v).map(|d| (d.0 as i64) * 86_400 + (hour - offset_h) * 3600))
}

fn props(c: Compression) -> WriterProperties {
    WriterProperties::builder().set_compression(c).build()
}

/// Each engine's run of `input`: exit status and stderr; findings as TSV.
fn audit(out: &Path, engine: &str, input: &Path) -> (i32, String) {
    let o = bin().args(["run", "--quiet", "--engine", engine, "--out"]).arg(out).arg(input).output().expect("spawn");
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stderr).into_owned())
}

fn findings(out: &Path) -> Vec<Vec<String>> {
    let (names, rows) = read_table(&out.join("findings.parquet"));
    let drop = [col(&names, "run_id"), col(&names, "source_file"), col(&names, "source_line")];
    rows.into_iter().map(|r| r.into_iter().enumerate().filter(|(i, _)| !drop.contains(i)).map(|(_, v)| v).collect()).collect()
}

/// Both engines read `file` with exit 0 and the CSV's findings.
fn same_as_csv(t: &Path, label: &str, file: &Path) {
    let csv = t.join("csv-out");
    if !csv.exists() {
        run_ok(&csv, &[sample_csv().to_str().unwrap()]);
    }
    let want = findings(&csv);
    assert!(want.len() > 10);
    for engine in ["fast", "plain"] {
        let out = t.join(format!("{label}-{engine}"));
        let (code, err) = audit(&out, engine, file);
        assert_eq!(code, 0, "{label} ({engine}): {err}");
        assert_eq!(findings(&out), want, "{label} ({engine})");
    }
}

/// `list<string>` where a code belongs is refused: exit 3, one line with
/// the file, the column and the type, by both engines. (Before: the codes
/// read as the text "[J2350]", no row in scope, exit 0.)
#[test]
fn list_columns_are_refused_naming_file_column_and_type() {
    let t = tmp();
    for column in ["hcpcs_code", "diagnosis_code_1"] {
        let p = t.path().join(format!("list-{column}.parquet"));
        write(&p, props(Compression::SNAPPY), &|name, v| (name == column).then(|| as_list(v)));
        for engine in ["fast", "plain"] {
            let (code, err) = audit(&t.path().join(format!("out-{column}-{engine}")), engine, &p);
            assert_eq!(code, 3, "{column} ({engine}): {err}");
            assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
            let file = p.display().to_string();
            assert!(err.contains(&file) && err.contains(column) && err.contains("list<string>"), "{err}");
            assert!(!t.path().join(format!("out-{column}-{engine}")).join("findings.parquet").exists());
        }
    }
}

/// Timestamps in UTC and in a named zone give the CSV's findings: the date
/// is the calendar date in the column's zone. In New York at 21:00 the UTC
/// date is already the next day; in Tokyo at 07:00 it is still the day
/// before. (Before: `Invalid timezone "UTC"`, naming no file.)
#[test]
fn zoned_timestamps_read_as_their_own_zones_date() {
    let t = tmp();
    let dates = ["claim_start_date", "claim_end_date", "claim_line_start_date", "claim_line_end_date"];
    let is_date = |n: &str| dates.contains(&n);
    for (label, tz, hour, offset) in
        [("utc", "UTC", 12, 0), ("new-york", "America/New_York", 21, -5), ("tokyo", "Asia/Tokyo", 7, 9), ("offset", "+05:30", 1, 5)]
    {
        let p = t.path().join(format!("{label}.parquet"));
        write(&p, props(Compression::SNAPPY), &|name, v| is_date(name).then(|| as_timestamps(v, tz, hour, offset)));
        same_as_csv(t.path(), label, &p);
    }
    // Seconds: Parquet stores them as milliseconds, UTC-adjusted, with the
    // zone only in the embedded Arrow schema, which arrow-rs does not apply
    // across units (the dates were UTC's, a day late).
    let p = t.path().join("new-york-seconds.parquet");
    write(&p, props(Compression::SNAPPY), &|name, v| {
        is_date(name).then(|| Arc::new(seconds(v, 21, -5).collect::<TimestampSecondArray>().with_timezone("America/New_York")) as ArrayRef)
    });
    same_as_csv(t.path(), "new-york-seconds", &p);
}

/// Brotli, raw and Hadoop-framed LZ4, gzip and zstd files read like the CSV. (Before:
/// brotli failed with "Disabled feature at compile time: brotli".)
#[test]
fn every_codec_reads() {
    let t = tmp();
    for (label, c) in [
        ("brotli", Compression::BROTLI(BrotliLevel::default())),
        ("lz4-raw", Compression::LZ4_RAW),
        // The older LZ4 codec, which arrow-rs writes Hadoop-framed as Spark does.
        ("lz4-hadoop", Compression::LZ4),
        ("gzip", Compression::GZIP(Default::default())),
        ("zstd", Compression::ZSTD(Default::default())),
        ("none", Compression::UNCOMPRESSED),
    ] {
        let p = t.path().join(format!("{label}.parquet"));
        write(&p, props(c), &|_, _| None);
        same_as_csv(t.path(), label, &p);
    }
}

/// A timestamp where a number belongs is refused too, and a column type
/// error names its file.
#[test]
fn a_date_in_the_units_column_is_refused() {
    let t = tmp();
    let p = t.path().join("units.parquet");
    write(&p, props(Compression::SNAPPY), &|name, v| {
        (name == "service_unit_quantity").then(|| as_timestamps(&vec!["2025-01-06".to_string(); v.len()], "UTC", 0, 0))
    });
    let (code, err) = audit(&t.path().join("out"), "fast", &p);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains(&p.display().to_string()) && err.contains("service_unit_quantity") && err.contains("timestamp[us, tz=UTC]"),
        "{err}"
    );
}
