//! Generated extracts: the fast CSV path agrees with the plain one, and a
//! killed run never leaves something that looks complete.

use std::path::Path;
use std::time::Duration;

use crate::common::*;

fn generate(path: &Path, lines: u64, cohort: u64, format: &str) {
    generate_with(path, None, lines, cohort, format)
}

/// Generates a medical extract and, with `rx`, its pharmacy extract.
fn generate_with(path: &Path, rx: Option<&Path>, lines: u64, cohort: u64, format: &str) {
    let mut cmd = bin();
    cmd.args(["generate", "--lines", &lines.to_string(), "--cohort", &cohort.to_string(), "--seed", "7", "--format", format, "--out"])
        .arg(path);
    if let Some(rx) = rx {
        cmd.arg("--pharmacy").arg(rx);
    }
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn generator_is_deterministic_and_trips_every_rule() {
    let t = tmp();
    let (a, b) = (t.path().join("a.csv"), t.path().join("b.csv"));
    let (arx, brx) = (t.path().join("a_rx.csv"), t.path().join("b_rx.csv"));
    generate_with(&a, Some(&arx), 60_000, 400, "csv");
    generate_with(&b, Some(&brx), 60_000, 400, "csv");
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert_eq!(std::fs::read(&arx).unwrap(), std::fs::read(&brx).unwrap());
    let out = t.path().join("out");
    run_ok(&out, &[a.to_str().unwrap(), arx.to_str().unwrap()]);
    let m = manifest(&out);
    for r in m["rules"].as_array().unwrap() {
        assert!(r["flagged"].as_u64().unwrap() > 0, "{} never fires on the generated extract", r["rule_id"]);
    }
    // Files are listed sorted: a.csv, then a_rx.csv.
    assert_eq!(m["inputs"][0]["rows_read"], 60_000);
    assert_eq!((m["inputs"][0]["kind"].as_str(), m["inputs"][1]["kind"].as_str()), (Some("medical"), Some("pharmacy")));
    // Institutional revenue-code-only lines are accepted, never rejects.
    assert!(m["inputs"][0]["rows_without_hcpcs"].as_u64().unwrap() > 1_000, "{}", m["inputs"][0]);
    assert!(m["inputs"][0]["rows_uncoded_drug"].as_u64().unwrap() > 100, "{}", m["inputs"][0]);
    let (names, rejects) = read_table(&out.join("rejects.parquet"));
    let reason = col(&names, "reason_code");
    assert!(rejects.iter().all(|r| r[reason] == "reversal_unmatched"), "only planted unmatched reversals are rejects");
    // Every pharmacy-side outcome happens: matched, supplied, unused.
    let ph = &m["pharmacy"];
    for k in ["matched_to_medical", "supplied_administrations", "unused"] {
        assert!(ph[k].as_u64().unwrap() > 0, "{k}: {ph}");
    }
    let (names, eps) = read_table(&out.join("episodes.parquet"));
    let supply = col(&names, "supply");
    assert!(eps.iter().any(|e| e[supply] == "pharmacy") && eps.iter().any(|e| e[supply] == "medical"));
}

#[test]
fn fast_path_equals_plain_path() {
    let t = tmp();
    let (csv, rx) = (t.path().join("g.csv"), t.path().join("g_rx.csv"));
    // Quoted newlines and format quirks are part of every generated extract.
    generate_with(&csv, Some(&rx), 200_000, 1_500, "csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.contains("\"\"legacy\"\"\nrider"), "generator writes quoted newlines");
    let (fast, plain) = (t.path().join("fast"), t.path().join("plain"));
    run_ok(&fast, &[csv.to_str().unwrap(), rx.to_str().unwrap()]);
    run_ok(&plain, &["--csv-engine", "plain", csv.to_str().unwrap(), rx.to_str().unwrap()]);
    for f in ["findings.parquet", "episodes.parquet", "rejects.parquet"] {
        assert_eq!(read_table(&fast.join(f)), read_table(&plain.join(f)), "{f} differs between fast and plain CSV paths");
    }
    let (mf, mp) = (manifest(&fast), manifest(&plain));
    assert_eq!(mf["inputs"], mp["inputs"]);
    assert_eq!(mf["rules"], mp["rules"]);
}

/// The fast Parquet reader against the plain one (`--engine plain`, arrow-rs's
/// record batch reader); python/tests/test_parquet_writers.py covers other
/// writers' files, and polars' own reader.
#[test]
fn fast_parquet_reader_equals_plain_reader() {
    let t = tmp();
    let (pq, rx) = (t.path().join("g.parquet"), t.path().join("g_rx.parquet"));
    generate_with(&pq, Some(&rx), 100_000, 800, "parquet");
    let (fast, plain) = (t.path().join("fast"), t.path().join("plain"));
    run_ok(&fast, &[pq.to_str().unwrap(), rx.to_str().unwrap()]);
    run_ok(&plain, &["--engine", "plain", pq.to_str().unwrap(), rx.to_str().unwrap()]);
    let (names, rows) = read_table(&fast.join("findings.parquet"));
    assert!(rows.len() > 20);
    let run_id = col(&names, "run_id");
    let strip = |rows: Vec<Vec<String>>| {
        rows.into_iter()
            .map(|mut r| {
                r.remove(run_id);
                r
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(rows), strip(read_table(&plain.join("findings.parquet")).1));
    for f in ["episodes.parquet", "rejects.parquet"] {
        assert_eq!(read_table(&fast.join(f)), read_table(&plain.join(f)), "{f} differs between the Parquet readers");
    }
    let (mf, mp) = (manifest(&fast), manifest(&plain));
    for k in ["rows_read", "rows_accepted", "rows_rejected", "rows_in_scope", "rows_kept", "rows_without_hcpcs", "rows_uncoded_drug"] {
        for i in 0..2 {
            assert_eq!(mf["inputs"][i][k], mp["inputs"][i][k], "{k} of input {i}");
        }
    }
    assert_eq!(mf["rules"], mp["rules"]);
}

/// A dense extract (every line in scope): the Parquet reader's second pass
/// reads each row group in batches of chosen rows, across page edges.
#[test]
fn fast_parquet_reader_equals_plain_reader_on_a_dense_extract() {
    let t = tmp();
    let pq = t.path().join("d.parquet");
    let o = bin()
        .args(["generate", "--lines", "30000", "--cohort", "0", "--seed", "5", "--dense", "--format", "parquet", "--out"])
        .arg(&pq)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (fast, plain) = (t.path().join("fast"), t.path().join("plain"));
    run_ok(&fast, &[pq.to_str().unwrap()]);
    run_ok(&plain, &["--engine", "plain", pq.to_str().unwrap()]);
    let m = manifest(&fast);
    // More chosen rows than three batches of 8192.
    assert!(m["inputs"][0]["rows_kept"].as_u64().unwrap() > 3 * 8192, "{}", m["inputs"][0]);
    let strip = |p: &Path| {
        let (names, rows) = read_table(p);
        let run_id = col(&names, "run_id");
        rows.into_iter()
            .map(|mut r| {
                r.remove(run_id);
                r
            })
            .collect::<Vec<_>>()
    };
    assert!(strip(&fast.join("findings.parquet")).len() > 20);
    assert_eq!(strip(&fast.join("findings.parquet")), strip(&plain.join("findings.parquet")));
    for f in ["episodes.parquet", "rejects.parquet", "timeline.parquet"] {
        assert_eq!(read_table(&fast.join(f)), read_table(&plain.join(f)), "{f} differs between the Parquet readers");
    }
}

#[test]
fn csv_and_parquet_generated_extracts_agree() {
    let t = tmp();
    let (csv, pq) = (t.path().join("g.csv"), t.path().join("g.parquet"));
    let (csv_rx, pq_rx) = (t.path().join("g_rx.csv"), t.path().join("g_rx.parquet"));
    generate_with(&csv, Some(&csv_rx), 100_000, 800, "csv");
    generate_with(&pq, Some(&pq_rx), 100_000, 800, "parquet");
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    run_ok(&a, &[csv.to_str().unwrap(), csv_rx.to_str().unwrap()]);
    run_ok(&b, &[pq.to_str().unwrap(), pq_rx.to_str().unwrap()]);
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
        // Anything else left beside the target is a hidden staging or spill directory.
        for e in std::fs::read_dir(t.path()).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let private = name.starts_with(".out.tmp-") || name.starts_with(".out.spill-");
            assert!(name == "out" || name == "big.csv" || name == ".out.lock" || private, "unexpected {name}");
        }
    }
    // The next run removes what killed runs left.
    run_ok(&out, &[sample_csv().to_str().unwrap()]);
    let left: Vec<String> = std::fs::read_dir(t.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with(".out.") && n != ".out.lock")
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
