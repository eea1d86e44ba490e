//! Flat memory: a run whose kept rows pass `--memory-limit` spills them to
//! partitions by person and audits one group at a time. Its outputs are
//! byte-identical to a run that never spills, for any thread count, and its
//! temporary files are gone afterwards.

use std::path::Path;

use crate::common::*;

/// A medical extract and its pharmacy extract. Parquet files get 600k lines:
/// three row groups, read in parallel, handing rows to the store at once.
fn generate(path: &Path, rx: &Path, format: &str) {
    let lines = if format == "parquet" { "600000" } else { "80000" };
    let o = bin()
        .args(["generate", "--lines", lines, "--cohort", "600", "--seed", "11", "--format", format, "--out"])
        .arg(path)
        .arg("--pharmacy")
        .arg(rx)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// The manifest without what differs by design between two runs of the same
/// audit: times, the command line, the thread count and the spill section.
fn stable_manifest(out: &Path) -> serde_json::Value {
    let mut m = manifest(out);
    let o = m.as_object_mut().unwrap();
    for k in ["started_at", "finished_at", "timings_seconds", "spill"] {
        o.remove(k);
    }
    let args = o["arguments"].as_object_mut().unwrap();
    args.remove("argv");
    args.remove("threads");
    m
}

const BYTE_EQUAL: [&str; 7] =
    ["findings.parquet", "episodes.parquet", "rejects.parquet", "resolved.parquet", "timeline.parquet", "summary.md", "report.html"];

fn spilled_equals_in_memory(format: &str) {
    let t = tmp();
    let (med, rx) = (t.path().join(format!("g.{format}")), t.path().join(format!("g_rx.{format}")));
    generate(&med, &rx, format);
    let inputs = [med.to_str().unwrap(), rx.to_str().unwrap()];
    let base = t.path().join("base");
    run_ok(&base, &[&["--memory-limit", "none"][..], &inputs].concat());
    assert!(manifest(&base).get("spill").is_none(), "no spill without a limit");
    for threads in ["1", "2"] {
        let out = t.path().join(format!("spilled-{threads}"));
        run_ok(&out, &[&["--memory-limit", "1M", "--threads", threads][..], &inputs].concat());
        let spill = &manifest(&out)["spill"];
        assert!(spill["groups"].as_u64().unwrap() > 1, "the 1M limit must split the audit: {spill}");
        assert!(spill["rows"].as_u64().unwrap() > 1_000, "{spill}");
        for f in BYTE_EQUAL {
            assert!(
                std::fs::read(base.join(f)).unwrap() == std::fs::read(out.join(f)).unwrap(),
                "{f} differs when spilled ({threads} threads)"
            );
        }
        assert_eq!(stable_manifest(&base), stable_manifest(&out));
    }
    // Nothing is left beside the outputs but the outputs and their locks.
    let left: Vec<String> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with('.') && !n.ends_with(".lock"))
        .collect();
    assert!(left.is_empty(), "temporary directories left behind: {left:?}");
}

#[test]
fn spilled_csv_run_equals_in_memory_run() {
    spilled_equals_in_memory("csv");
}

#[test]
fn spilled_parquet_run_equals_in_memory_run() {
    spilled_equals_in_memory("parquet");
}

#[test]
fn spilled_run_with_previous_resolves_like_in_memory_run() {
    let t = tmp();
    let (med, rx) = (t.path().join("g.csv"), t.path().join("g_rx.csv"));
    generate(&med, &rx, "csv");
    let inputs = [med.to_str().unwrap(), rx.to_str().unwrap()];
    let night1 = t.path().join("night1");
    run_ok(&night1, &[&["--memory-limit", "none", "--run-date", "2026-01-01"][..], &inputs].concat());
    // Night two reads only the medical extract: pharmacy findings resolve.
    let prev = ["--previous", night1.to_str().unwrap(), "--run-date", "2026-01-02", inputs[0]];
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    run_ok(&a, &[&["--memory-limit", "none"][..], &prev].concat());
    run_ok(&b, &[&["--memory-limit", "1M"][..], &prev].concat());
    let (_, resolved) = read_table(&a.join("resolved.parquet"));
    assert!(!resolved.is_empty(), "night two resolves something");
    for f in ["findings.parquet", "resolved.parquet"] {
        assert!(std::fs::read(a.join(f)).unwrap() == std::fs::read(b.join(f)).unwrap(), "{f} differs when spilled");
    }
}

#[test]
fn memory_limit_is_checked() {
    let t = tmp();
    for bad in ["12Q", "-1", "100"] {
        let o = run(&t.path().join("o"), &["--memory-limit", bad, sample_csv().to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{bad}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}
