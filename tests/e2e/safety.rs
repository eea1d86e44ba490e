//! An operator's mistakes (issue 27): `--out` replaces only its own output,
//! no lock files pile up, a file that is mostly rejects stops the run, and
//! the command line is strict and says what it wants.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::*;

/// Every file under `dir` (hidden ones too) with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut all = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                all.insert(p.clone(), Vec::new());
                todo.push(p);
            } else {
                all.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    all
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit 2 with one line that contains `what`.
fn assert_refused(o: &Output, what: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.contains(what), "{what:?} not in {err}");
}

/// `/data/t3` holding `extracts/` (the whole sample) and `notes.md`.
fn t3(root: &Path) -> PathBuf {
    let t3 = root.join("t3");
    let ex = t3.join("extracts");
    std::fs::create_dir_all(&ex).unwrap();
    for f in ["claims.csv", "institutional.csv", "pharmacy.csv"] {
        std::fs::copy(sample_dir().join(f), ex.join(f)).unwrap();
    }
    std::fs::write(t3.join("notes.md"), "# t3\nwhat the payer sent, and when\n").unwrap();
    t3
}

#[test]
fn out_holding_the_inputs_is_refused_and_left_as_it_is() {
    let t = tmp();
    let t3 = t3(t.path());
    let before = snapshot(t.path());
    let o = run(&t3, &[t3.join("extracts/").to_str().unwrap()]);
    assert_refused(&o, "holds an input of this run");
    assert_eq!(snapshot(t.path()), before, "nothing beside or under --out changed, no lock file left");
}

#[test]
fn out_naming_an_input_file_is_refused() {
    let t = tmp();
    let claims = t.path().join("claims.csv");
    std::fs::copy(sample_csv(), &claims).unwrap();
    let before = snapshot(t.path());
    let o = run(&claims, &[claims.to_str().unwrap()]);
    assert_refused(&o, "is an input of this run");
    assert_eq!(snapshot(t.path()), before);
}

#[test]
fn out_inside_an_input_directory_is_refused() {
    let t = tmp();
    let t3 = t3(t.path());
    let before = snapshot(t.path());
    let o = run(&t3.join("extracts/audit"), &[t3.join("extracts").to_str().unwrap()]);
    assert_refused(&o, "lies inside input directory");
    assert_eq!(snapshot(t.path()), before);
}

#[test]
fn out_of_other_files_or_a_file_is_refused() {
    let t = tmp();
    let other = t.path().join("reports");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("q3.xlsx"), b"not ours").unwrap();
    std::fs::write(other.join("manifest.json"), br#"{"tool": {"name": "another-tool"}, "outputs": [{"path": "q3.xlsx"}]}"#).unwrap();
    let file = t.path().join("notes.md");
    std::fs::write(&file, "notes").unwrap();
    let before = snapshot(t.path());
    assert_refused(&run(&other, &[sample_csv().to_str().unwrap()]), "is a folder of other files (manifest.json, q3.xlsx)");
    assert_refused(&run(&file, &[sample_csv().to_str().unwrap()]), "is a file, not an output directory");
    assert_eq!(snapshot(t.path()), before);
}

#[test]
fn only_an_earlier_output_or_an_empty_directory_is_replaced() {
    let t = tmp();
    let input = sample_csv();
    let empty = t.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    run_ok(&empty, &[input.to_str().unwrap()]);
    assert!(empty.join("_SUCCESS").exists());
    // An earlier output is replaced: the run's files, and nothing else.
    run_ok(&empty, &[input.to_str().unwrap()]);
    let first = std::fs::read(empty.join("findings.parquet")).unwrap();
    // A file someone put into it is not the run's to delete.
    std::fs::write(empty.join("notes.md"), "reviewed 12/01").unwrap();
    let before = snapshot(t.path());
    assert_refused(&run(&empty, &[input.to_str().unwrap()]), "also holds other files (notes.md)");
    assert_eq!(snapshot(t.path()), before);
    assert_eq!(std::fs::read(empty.join("findings.parquet")).unwrap(), first);
}

#[test]
fn the_lock_file_goes_when_the_run_ends() {
    let t = tmp();
    let audit = t.path().join("audit");
    for night in ["2026-12-01", "2026-12-02", "2026-12-03"] {
        run_ok(&audit.join(night), &[sample_csv().to_str().unwrap()]);
    }
    let names: Vec<String> = std::fs::read_dir(&audit).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    let mut names = names;
    names.sort();
    assert_eq!(names, ["2026-12-01", "2026-12-02", "2026-12-03"], "no .DATE.lock per night");
    // A failed run leaves none either.
    let o = run(&audit.join("2026-12-04"), &[t.path().join("missing.csv").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(!audit.join(".2026-12-04.lock").exists());
}

#[test]
fn the_readme_run_leaves_git_status_clean() {
    // A clean clone has git; an unpacked source archive may not.
    let Ok(o) = std::process::Command::new("git").arg("-C").arg(repo()).args(["ls-files", "--", ".out.lock"]).output() else { return };
    if !o.status.success() {
        return;
    }
    assert!(o.stdout.is_empty(), ".out.lock is not in the repository");
    for p in [".out.lock", "out", ".out.tmp-123", ".out.spill-123"] {
        let ignored =
            std::process::Command::new("git").arg("-C").arg(repo()).args(["check-ignore", "-q", "--no-index", p]).status().unwrap();
        assert!(ignored.success(), "{p} is ignored");
    }
}

/// 20 rows: 5 good, 15 with a date no one can read (a shifted export).
fn mostly_rejects(dir: &Path) -> PathBuf {
    let good = (1..=5).map(|i| format!("A{i},1,P{i},Aetna,2025-11-03,12,J2350,,600,50242-0150-01,G35.A,100"));
    let bad = (1..=15).map(|i| format!("B{i},1,P{i},Aetna,11/33/2025,12,J2350,,600,50242-0150-01,G35.A,100"));
    let rows: Vec<String> = good.chain(bad).collect();
    write_csv(dir, "shifted.csv", &rows.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn a_file_that_is_mostly_rejects_stops_the_run() {
    let t = tmp();
    let out = t.path().join("out");
    run_ok(&out, &[sample_dir().to_str().unwrap()]);
    // The sample passes: pharmacy.csv rejects 1 row of 11, below --min-rejects.
    let m = manifest(&out);
    let rx = m["inputs"].as_array().unwrap().iter().find(|f| f["path"].as_str().unwrap().ends_with("pharmacy.csv")).unwrap();
    assert_eq!((rx["rows_read"].as_u64(), rx["rows_rejected"].as_u64()), (Some(11), Some(1)));
    let before = snapshot(t.path());
    let bad = mostly_rejects(t.path());
    let before_bad = std::fs::read(&bad).unwrap();

    let o = run(&out, &[sample_dir().to_str().unwrap(), bad.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("shifted.csv: 15 of 20 rows rejected (75.0%)"), "{err}");
    assert!(err.contains("most common reason: bad_date (15 rows)"), "{err}");
    let mut now = snapshot(t.path());
    now.remove(&bad);
    assert_eq!(now, before, "the previous output is kept, nothing left beside it");

    // The same file with a lower rate passes; --max-reject-rate 1 lets it through.
    let o = run(&out, &["--max-reject-rate", "1", bad.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let f = &manifest(&out)["inputs"][0];
    assert_eq!((f["rows_read"].as_u64(), f["rows_accepted"].as_u64(), f["rows_rejected"].as_u64()), (Some(20), Some(5), Some(15)));
    let (names, rows) = read_table(&out.join("findings.parquet"));
    assert!(rows.iter().all(|r| r[col(&names, "claim_id")].starts_with('A')), "findings from the readable rows only");
    assert_eq!(read_table(&out.join("rejects.parquet")).1.len(), 15);
    assert_eq!(std::fs::read(&bad).unwrap(), before_bad);
    // Below --min-rejects the rate does not apply.
    let o = run(&t.path().join("out2"), &["--min-rejects", "16", bad.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn dates_on_the_command_line_are_yyyy_mm_dd_only() {
    let t = tmp();
    let out = t.path().join("out");
    for (opt, v) in [("--from", "11/30/2026"), ("--to", "01/02/2026"), ("--run-date", "2026-1-2"), ("--from", "20261130")] {
        let o = run(&out, &[opt, v, sample_csv().to_str().unwrap()]);
        assert_refused(&o, "YYYY-MM-DD");
        assert!(stderr(&o).contains(opt), "names the option: {}", stderr(&o));
    }
    assert!(!out.exists());
    run_ok(&out, &["--from", "2025-01-02", "--to", "2026-11-30", "--run-date", "2026-12-01", sample_csv().to_str().unwrap()]);
    assert_eq!(manifest(&out)["arguments"]["from"], "2025-01-02");
}

#[test]
fn the_command_line_says_what_it_wants() {
    // A missing argument is named.
    let o = bin().args(["run", sample_dir().to_str().unwrap()]).output().unwrap();
    assert_refused(&o, "--out");
    // No command: the usage and the commands.
    let o = bin().output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("Usage: claims-audit <COMMAND>"), "{err}");
    for c in ["run", "diff", "explain", "rules", "generate"] {
        assert!(err.lines().any(|l| l.trim_start().starts_with(c)), "lists {c}: {err}");
    }
    // A wrong delimiter lists the right ones.
    let t = tmp();
    let o = run(&t.path().join("out"), &["--delimiter", "semicolon", sample_csv().to_str().unwrap()]);
    assert_refused(&o, "[possible values: comma, pipe, tab]");
    // So does a wrong rate.
    let o = run(&t.path().join("out"), &["--max-reject-rate", "5%", sample_csv().to_str().unwrap()]);
    assert_refused(&o, "is not a rate from 0 to 1");
}

#[test]
fn exit_status_is_distinct_by_kind() {
    let t = tmp();
    let input = sample_csv();
    // Usage: an unknown option.
    assert_eq!(run(&t.path().join("a"), &["--frm", "2026-01-01", input.to_str().unwrap()]).status.code(), Some(2));
    // Input not found.
    assert_eq!(run(&t.path().join("b"), &[t.path().join("none.csv").to_str().unwrap()]).status.code(), Some(3));
    // Output not writable: its parent is a file.
    let file = t.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let o = run(&file.join("out"), &[input.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert_eq!(stderr(&o).trim_end().lines().count(), 1);
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
}

#[test]
fn diff_out_never_lands_in_a_run_it_compares() {
    let t = tmp();
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    run_ok(&a, &[sample_csv().to_str().unwrap()]);
    run_ok(&b, &[sample_dir().to_str().unwrap()]);
    let before = snapshot(t.path());
    let o = bin().arg("diff").arg(&a).arg(&b).arg("--out").arg(a.join("findings.parquet")).output().unwrap();
    assert_refused(&o, "lies inside input directory");
    let o = bin().arg("diff").arg(&a).arg(&b).arg("--out").arg(&b).output().unwrap();
    assert_refused(&o, "is an input of this command");
    assert_eq!(snapshot(t.path()), before);
    // Beside them it is written (exit 1: the runs differ).
    let o = bin().arg("diff").arg(&a).arg(&b).arg("--out").arg(t.path().join("d.parquet")).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(t.path().join("d.parquet").exists());
}
