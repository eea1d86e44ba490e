//! Generated extracts: the fast CSV path agrees with the plain one, and a
//! killed run never leaves something that looks complete.

use std::path::Path;
use std::time::Duration;

use crate::common::*;

fn generate(path: &Path, lines: u64, cohort: u64, format: &str) {
    let o = bin()
        .args(["generate", "--lines", &lines.to_string(), "--cohort", &cohort.to_string(), "--seed", "7", "--format", format, "--out"])
        .arg(path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn generator_is_deterministic_and_trips_every_rule() {
    let t = tmp();
    let (a, b) = (t.path().join("a.csv"), t.path().join("b.csv"));
    generate(&a, 60_000, 400, "csv");
    generate(&b, 60_000, 400, "csv");
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let out = t.path().join("out");
    run_ok(&out, &[a.to_str().unwrap()]);
    let m = manifest(&out);
    for r in m["rules"].as_array().unwrap() {
        assert!(r["flagged"].as_u64().unwrap() > 0, "{} never fires on the generated extract", r["rule_id"]);
    }
    assert_eq!(m["inputs"][0]["rows_read"], 60_000);
}

#[test]
fn fast_path_equals_plain_path() {
    let t = tmp();
    let csv = t.path().join("g.csv");
    // Quoted newlines and format quirks are part of every generated extract.
    generate(&csv, 200_000, 1_500, "csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.contains("\"\"legacy\"\"\nrider"), "generator writes quoted newlines");
    let (fast, plain) = (t.path().join("fast"), t.path().join("plain"));
    run_ok(&fast, &[csv.to_str().unwrap()]);
    run_ok(&plain, &["--csv-engine", "plain", csv.to_str().unwrap()]);
    for f in ["findings.parquet", "episodes.parquet", "rejects.parquet"] {
        assert_eq!(read_table(&fast.join(f)), read_table(&plain.join(f)), "{f} differs between fast and plain CSV paths");
    }
    let (mf, mp) = (manifest(&fast), manifest(&plain));
    assert_eq!(mf["inputs"], mp["inputs"]);
    assert_eq!(mf["rules"], mp["rules"]);
}

#[test]
fn csv_and_parquet_generated_extracts_agree() {
    let t = tmp();
    let (csv, pq) = (t.path().join("g.csv"), t.path().join("g.parquet"));
    generate(&csv, 100_000, 800, "csv");
    generate(&pq, 100_000, 800, "parquet");
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    run_ok(&a, &[csv.to_str().unwrap()]);
    run_ok(&b, &[pq.to_str().unwrap()]);
    let key = |p: &Path| {
        let (names, rows) = read_table(&p.join("findings.parquet"));
        let keep: Vec<usize> =
            ["rule_id", "person_id", "claim_id", "claim_line_number", "service_date", "evidence"].iter().map(|k| col(&names, k)).collect();
        rows.into_iter().map(|r| keep.iter().map(|&i| r[i].clone()).collect::<Vec<_>>()).collect::<Vec<_>>()
    };
    assert_eq!(key(&a), key(&b));
}

#[test]
fn kill_at_any_moment_leaves_previous_output_intact() {
    let t = tmp();
    let big = t.path().join("big.csv");
    generate(&big, 1_500_000, 10_000, "csv");
    let out = t.path().join("out");
    run_ok(&out, &[sample_csv().to_str().unwrap()]);
    let before = std::fs::read(out.join("findings.parquet")).unwrap();
    for delay_ms in [5u64, 40, 150, 400, 900, 1500] {
        let mut child = bin().args(["run", "--quiet", "--threads", "1", "--out"]).arg(&out).arg(&big).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let finished = child.try_wait().unwrap().is_some();
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        assert!(out.join("_SUCCESS").exists(), "target always holds a complete run");
        let now = std::fs::read(out.join("findings.parquet")).unwrap();
        if !finished && now != before {
            // The new run finished between the check and the kill: it must be whole.
            let m = manifest(&out);
            assert_eq!(m["inputs"][0]["path"], big.display().to_string());
        }
        // Anything else left beside the target is a hidden staging directory.
        for e in std::fs::read_dir(t.path()).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            assert!(name == "out" || name == "big.csv" || name.starts_with(".out.tmp-"), "unexpected {name}");
        }
    }
}
