//! Extracts as payers deliver them (INPUT.md "Files", "The same extract
//! delivered twice"): lakehouse directories, legacy encodings, files sent
//! twice. Each case gives the clean input's findings.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::*;

/// findings.parquet without `run_id` (it names the inputs), in file order.
fn findings(out: &Path) -> Vec<Vec<String>> {
    findings_without(out, &["run_id"])
}

/// findings.parquet without the given columns, in file order.
fn findings_without(out: &Path, drop: &[&str]) -> Vec<Vec<String>> {
    let (names, rows) = read_table(&out.join("findings.parquet"));
    let skip: Vec<usize> = drop.iter().map(|d| col(&names, d)).collect();
    rows.into_iter().map(|r| r.into_iter().enumerate().filter(|(i, _)| !skip.contains(i)).map(|(_, v)| v).collect()).collect()
}

/// `run` with the out directory under `dir`.
fn audit(dir: &Path, name: &str, args: &[&str]) -> (PathBuf, Output) {
    let out = dir.join(name);
    let o = run(&out, args);
    (out, o)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The manifest's entry for the input whose path ends with `suffix`.
fn input_entry(out: &Path, suffix: &str) -> serde_json::Value {
    let m = manifest(out);
    m["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["path"].as_str().unwrap().ends_with(suffix))
        .cloned()
        .unwrap_or_else(|| panic!("no input {suffix}: {m}"))
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(from, to).unwrap();
}

/// Strips the directory part of every `source_file`, so runs over the same
/// extract laid out in different folders compare.
fn by_name(rows: Vec<Vec<String>>) -> Vec<Vec<String>> {
    rows.into_iter()
        .map(|r| r.into_iter().map(|v| if v.contains('/') { v.rsplit('/').next().unwrap().to_string() } else { v }).collect())
        .collect()
}

#[test]
fn a_lakehouse_directory_is_searched_recursively() {
    let t = tmp();
    let (base, o) = audit(t.path(), "base", &[sample_dir().to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));

    // The sample as a lake lays it out: partition folders, a Parquet part
    // file, and what writers and people leave beside the data.
    let lake = t.path().join("lake");
    copy(&sample_parquet(), &lake.join("medical/year=2025/part-0.parquet"));
    copy(&sample_dir().join("institutional.csv"), &lake.join("medical/year=2025/month=11/institutional.csv"));
    copy(&sample_dir().join("pharmacy.csv"), &lake.join("pharmacy/pharmacy.csv"));
    for junk in ["medical/_SUCCESS", "medical/year=2025/.part-0.parquet.crc", "README.txt", "notes.md", "pharmacy/_committed_1"] {
        std::fs::write(lake.join(junk), "not an extract\n").unwrap();
    }
    // In-progress and hidden folders hold files that would fail if read.
    for junk in ["medical/_temporary/0/part-9.csv", ".staging/part-1.parquet", "medical/_x.csv"] {
        std::fs::create_dir_all(lake.join(junk).parent().unwrap()).unwrap();
        std::fs::write(lake.join(junk), "garbage\n").unwrap();
    }
    let (out, o) = audit(t.path(), "out", &[lake.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let m = manifest(&out);
    let paths: Vec<&str> = m["inputs"].as_array().unwrap().iter().map(|i| i["path"].as_str().unwrap()).collect();
    let rel: Vec<String> = paths.iter().map(|p| Path::new(p).strip_prefix(&lake).unwrap().display().to_string()).collect();
    assert_eq!(rel, ["medical/year=2025/month=11/institutional.csv", "medical/year=2025/part-0.parquet", "pharmacy/pharmacy.csv"]);
    // The findings are the sample's, where they come from aside (a Parquet
    // row's source_line is its row number).
    let strip = ["run_id", "source_file", "source_line"];
    let (want, got) = (findings_without(&base, &strip), findings_without(&out, &strip));
    assert!(!want.is_empty());
    assert_eq!(got, want);
}

#[test]
fn a_directory_without_extracts_is_refused_by_name() {
    let t = tmp();
    let d = t.path().join("empty");
    std::fs::create_dir_all(d.join("_temporary")).unwrap();
    std::fs::write(d.join("README.txt"), "x").unwrap();
    std::fs::write(d.join("_temporary/part-0.csv"), "x").unwrap();
    let (_, o) = audit(t.path(), "out", &[d.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("empty") && e.contains("no .csv, .csv.gz or .parquet"), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
}

/// The sample's claims.csv with its plan name spelled with an accent, in
/// UTF-8 (clean) and in Latin-1 bytes (legacy).
fn accented(dir: &Path) -> (PathBuf, PathBuf, u64) {
    let text = std::fs::read_to_string(sample_csv()).unwrap();
    let clean = text.replace("Aetna Choice POS II", "Aetna Choice POS II Santé");
    let n = text.matches("Aetna Choice POS II").count() as u64;
    let latin1: Vec<u8> = clean.chars().map(|c| u8::try_from(u32::from(c)).expect("Latin-1 text")).collect();
    let (a, b) = (dir.join("clean/claims.csv"), dir.join("latin1/claims.csv"));
    for p in [&a, &b] {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    }
    std::fs::write(&a, clean).unwrap();
    std::fs::write(&b, latin1).unwrap();
    (a, b, n)
}

#[test]
fn a_latin1_plan_name_is_read_as_windows_1252_not_rejected() {
    let t = tmp();
    let (clean, latin1, n) = accented(t.path());
    assert!(n > 200, "{n}");
    for engine in ["fast", "plain"] {
        let (a, o) = audit(t.path(), &format!("a-{engine}"), &["--engine", engine, clean.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        let (b, o) = audit(t.path(), &format!("b-{engine}"), &["--engine", engine, latin1.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let (ea, eb) = (input_entry(&a, "claims.csv"), input_entry(&b, "claims.csv"));
        for k in ["rows_read", "rows_accepted", "rows_rejected", "rows_in_scope", "rows_kept"] {
            assert_eq!(ea[k], eb[k], "{k} ({engine})");
        }
        assert_eq!(ea["fields_transcoded"], 0);
        // One field per in-scope row that names the plan; out-of-scope rows
        // are not decoded (INPUT.md "Out-of-scope rows").
        let transcoded = eb["fields_transcoded"].as_u64().unwrap();
        assert!(transcoded > 150 && transcoded <= n, "{transcoded} of {n} ({engine})");
        assert_eq!(by_name(findings(&a)), by_name(findings(&b)), "{engine}");
        assert_eq!(read_table(&a.join("rejects.parquet")).1.len(), read_table(&b.join("rejects.parquet")).1.len());
    }
}

/// The sample's three CSVs under `dir`, and what else `extra` names, copied
/// in as (source, name).
fn extract_dir(dir: &Path, extra: &[(PathBuf, &str)]) -> PathBuf {
    for f in ["claims.csv", "institutional.csv", "pharmacy.csv"] {
        copy(&sample_dir().join(f), &dir.join(f));
    }
    for (src, name) in extra {
        copy(src, &dir.join(name));
    }
    dir.to_path_buf()
}

#[test]
fn a_csv_and_its_parquet_twin_give_the_csv_findings() {
    let t = tmp();
    let clean = extract_dir(&t.path().join("clean"), &[]);
    let (a, o) = audit(t.path(), "a", &[clean.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
    let twins = extract_dir(
        &t.path().join("twins"),
        &[
            (sample_parquet_dir().join("claims.parquet"), "claims.parquet"),
            (sample_parquet_dir().join("institutional.parquet"), "institutional.parquet"),
            (sample_parquet_dir().join("pharmacy.parquet"), "pharmacy.parquet"),
        ],
    );
    let (b, o) = audit(t.path(), "b", &[twins.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warnings.len(), 1, "one warning line: {}", stderr(&o));
    assert!(warnings[0].contains("claims.parquet") && warnings[0].contains("read once"), "{}", warnings[0]);
    // The CSV comes first (name order), so its rows are the ones kept and
    // the findings name it.
    assert_eq!(by_name(findings(&a)), by_name(findings(&b)));
    for kind in ["claims", "institutional", "pharmacy"] {
        let csv = input_entry(&b, &format!("{kind}.csv"));
        let pq = input_entry(&b, &format!("{kind}.parquet"));
        assert_eq!(csv["rows_duplicate"], 0, "{csv}");
        assert_eq!(pq["rows_duplicate"], pq["rows_kept"], "every kept row of the twin: {pq}");
        assert!(pq["rows_duplicate"].as_u64().unwrap() > 0, "{pq}");
        let mut alone = input_entry(&a, &format!("{kind}.csv"));
        alone["path"] = csv["path"].clone();
        assert_eq!(csv, alone, "the CSV's counts are as without its twin");
    }
    let totals = &manifest(&b)["totals"];
    assert!(totals["rows_duplicate"].as_u64().unwrap() > 200, "{totals}");
}

#[test]
fn last_nights_file_resent_under_a_new_name_is_read_once() {
    let t = tmp();
    let (a, o) = audit(t.path(), "a", &[sample_csv().to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let d = t.path().join("in");
    copy(&sample_csv(), &d.join("claims.csv"));
    copy(&sample_csv(), &d.join("claims_resent.csv"));
    let (b, o) = audit(t.path(), "b", &[d.join("claims.csv").to_str().unwrap(), d.join("claims_resent.csv").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stderr(&o).lines().filter(|l| l.contains("warning")).count(), 1, "{}", stderr(&o));
    assert_eq!(by_name(findings(&a)), by_name(findings(&b)));
    let resent = input_entry(&b, "claims_resent.csv");
    assert_eq!(resent["rows_duplicate"], resent["rows_kept"], "{resent}");
    // No DUPLICATE_LINE from the second copy.
    let dups = |out: &Path| findings(out).iter().filter(|r| r.iter().any(|v| v == "DUPLICATE_LINE")).count();
    assert_eq!(dups(&a), dups(&b));
}

#[test]
fn rows_sharing_a_key_but_differing_in_a_value_are_both_kept() {
    let t = tmp();
    let text = std::fs::read_to_string(sample_csv()).unwrap();
    // The re-sent file corrects one dose line: 300 units become 600.
    let first = text.lines().find(|l| l.contains(",J2350,") && l.contains(",300,")).unwrap();
    let changed = text.replacen(first, &first.replacen(",300,", ",600,", 1), 1);
    let d = t.path().join("in");
    copy(&sample_csv(), &d.join("a.csv"));
    std::fs::write(d.join("b.csv"), changed).unwrap();
    let (b, o) = audit(t.path(), "b", &[d.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let second = input_entry(&b, "b.csv");
    assert_eq!(second["rows_duplicate"].as_u64().unwrap() + 1, second["rows_kept"].as_u64().unwrap(), "{second}");
    // Both versions of the line are read: one finding names b.csv.
    assert!(findings(&b).iter().any(|r| r.iter().any(|v| v.ends_with("b.csv"))), "the changed line is audited");
}

/// A generated extract and its Parquet twin: the twin's rows are read once
/// however the run is split (threads, spilled partitions).
#[test]
fn twins_are_read_once_with_any_thread_count_and_spilled() {
    let t = tmp();
    let csv = t.path().join("g.csv");
    let o = bin()
        .args(["generate", "--lines", "60000", "--cohort", "500", "--seed", "7", "--format", "csv", "--out"])
        .arg(&csv)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let pq = t.path().join("g_twin.parquet");
    let o = bin().arg("convert").arg(&csv).arg(&pq).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let base = t.path().join("base");
    run_ok(&base, &["--memory-limit", "none", csv.to_str().unwrap()]);
    let kept = input_entry(&base, "g.csv")["rows_kept"].as_u64().unwrap();
    for (name, args) in [("one", ["--threads", "1", "--memory-limit", "none"]), ("spilled", ["--threads", "2", "--memory-limit", "1M"])] {
        let out = t.path().join(name);
        run_ok(&out, &[&args[..], &[csv.to_str().unwrap(), pq.to_str().unwrap()]].concat());
        if name == "spilled" {
            assert!(manifest(&out)["spill"]["groups"].as_u64().unwrap() > 1, "the limit must split the audit");
        }
        assert_eq!(findings(&base), findings(&out), "{name}");
        let twin = input_entry(&out, "g_twin.parquet");
        assert_eq!(twin["rows_kept"].as_u64(), Some(kept), "{twin}");
        assert_eq!(twin["rows_duplicate"].as_u64(), Some(kept), "{name}: {twin}");
        for f in ["episodes.parquet", "timeline.parquet"] {
            assert!(std::fs::read(base.join(f)).unwrap() == std::fs::read(out.join(f)).unwrap(), "{f} differs ({name})");
        }
    }
}

#[test]
fn the_sample_directory_reads_each_row_once_without_warnings() {
    let t = tmp();
    let (out, o) = audit(t.path(), "out", &[sample_dir().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stderr(&o), "", "--quiet prints nothing on a clean sample");
    let m = manifest(&out);
    let names: Vec<&str> =
        m["inputs"].as_array().unwrap().iter().map(|i| i["path"].as_str().unwrap().rsplit('/').next().unwrap()).collect();
    assert_eq!(names, ["claims.csv", "institutional.csv", "pharmacy.csv"]);
    assert_eq!(m["totals"]["rows_duplicate"], 0);
    assert_eq!(m["totals"]["fields_transcoded"], 0);
}

#[test]
fn a_pipe_medical_file_and_a_comma_pharmacy_file_share_a_run() {
    let t = tmp();
    let (a, o) = audit(t.path(), "a", &[sample_dir().to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let d = extract_dir(&t.path().join("in"), &[]);
    // The medical extract from another system: pipe-delimited.
    let piped = std::fs::read_to_string(sample_csv()).unwrap().replace(',', "|");
    std::fs::write(d.join("claims.csv"), piped).unwrap();
    let (b, o) = audit(t.path(), "b", &[d.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(by_name(findings(&a)), by_name(findings(&b)));
    assert_eq!(input_entry(&b, "claims.csv")["rows_rejected"], input_entry(&a, "claims.csv")["rows_rejected"]);
    // --delimiter forces one for every file: the pipe file then has no
    // claim_id column.
    let (_, o) = audit(t.path(), "c", &["--delimiter", "comma", d.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("claims.csv") && stderr(&o).contains("claim_id"), "{}", stderr(&o));
}
