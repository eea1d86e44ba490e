use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_claims-audit"))
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn sample_csv() -> PathBuf {
    repo().join("sample_data/claims.csv")
}

pub fn sample_parquet() -> PathBuf {
    repo().join("tests/fixtures/sample_parquet/claims.parquet")
}

/// The whole sample: professional, institutional and pharmacy extracts.
pub fn sample_dir() -> PathBuf {
    repo().join("sample_data")
}

/// The Parquet twins of the whole sample.
pub fn sample_parquet_dir() -> PathBuf {
    repo().join("tests/fixtures/sample_parquet")
}

/// Runs `claims-audit run --quiet --out OUT ARGS...`.
pub fn run(out: &Path, args: &[&str]) -> Output {
    bin().arg("run").arg("--quiet").arg("--out").arg(out).args(args).output().expect("spawn claims-audit")
}

pub fn run_ok(out: &Path, args: &[&str]) {
    let o = run(out, args);
    assert!(o.status.success(), "run failed: {}", String::from_utf8_lossy(&o.stderr));
}

/// A Parquet file as (column names, rows of display strings).
pub fn read_table(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let r = SerializedFileReader::new(File::open(path).expect("open parquet")).expect("parquet reader");
    let names = r.metadata().file_metadata().schema_descr().columns().iter().map(|c| c.name().to_string()).collect();
    let rows = r
        .get_row_iter(None)
        .expect("row iter")
        .map(|row| {
            row.expect("row")
                .get_column_iter()
                .map(|(_, f)| match f {
                    Field::Str(s) => s.clone(),
                    Field::Null => String::new(),
                    // Shortest round-trip form, as Python's str(float) writes it
                    // (the golden file is read by both; Field's Display gives 0E0).
                    Field::Double(d) => format!("{d:?}"),
                    other => other.to_string(),
                })
                .collect()
        })
        .collect();
    (names, rows)
}

pub fn col(names: &[String], name: &str) -> usize {
    names.iter().position(|n| n == name).unwrap_or_else(|| panic!("no column {name}"))
}

pub fn manifest(out: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join("manifest.json")).expect("manifest")).expect("manifest json")
}

pub fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// Header of the sample extract, for hand-made test files.
pub const HEADER: &str = "claim_id,claim_line_number,person_id,payer,claim_line_start_date,place_of_service_code,hcpcs_code,hcpcs_modifier_1,service_unit_quantity,ndc_code,diagnosis_code_1,paid_amount";

/// Writes a CSV with the test header and the given rows.
pub fn write_csv(dir: &Path, name: &str, rows: &[&str]) -> PathBuf {
    let p = dir.join(name);
    let mut s = String::from(HEADER);
    s.push('\n');
    for r in rows {
        s.push_str(r);
        s.push('\n');
    }
    std::fs::write(&p, s).expect("write csv");
    p
}
