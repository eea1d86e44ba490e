//! Night after night (issue 9): stable finding ids, new/open/resolved across
//! runs, `diff`, one run per output directory, signals, and inputs that
//! change while they are read.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// (finding_id, rule_id, status, first_seen) of every finding.
fn findings(out: &Path) -> Vec<(String, String, String, String)> {
    let (n, rows) = read_table(&out.join("findings.parquet"));
    let c: Vec<usize> = ["finding_id", "rule_id", "status", "first_seen"].iter().map(|k| col(&n, k)).collect();
    rows.into_iter().map(|r| (r[c[0]].clone(), r[c[1]].clone(), r[c[2]].clone(), r[c[3]].clone())).collect()
}

fn ids(out: &Path) -> BTreeSet<String> {
    findings(out).into_iter().map(|f| f.0).collect()
}

/// The sample's three extracts copied into `dir`.
fn copy_sample(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for f in ["claims.csv", "institutional.csv", "pharmacy.csv"] {
        std::fs::copy(sample_dir().join(f), dir.join(f)).unwrap();
    }
}

/// Rows of the sample's claims.csv that reverse the given claim lines.
fn reversals_of(lines: &[(&str, &str)]) -> String {
    let text = std::fs::read_to_string(sample_csv()).unwrap();
    let mut it = text.lines();
    let header = it.next().unwrap();
    let cols: Vec<&str> = header.split(',').collect();
    let (ci, li, ui) = (0, 1, cols.iter().position(|c| *c == "service_unit_quantity").unwrap());
    let mut out = format!("{header}\n");
    for row in it {
        let mut f: Vec<String> = row.split(',').map(str::to_string).collect();
        if lines.iter().any(|(c, l)| f[ci] == *c && f[li] == *l) {
            f[ci] = format!("V{}", f[ci]);
            f[ui] = format!("-{}", f[ui]);
            out.push_str(&f.join(","));
            out.push('\n');
        }
    }
    out
}

#[test]
fn night_one_night_two() {
    let t = tmp();
    let (n1, n2) = (t.path().join("night1"), t.path().join("night2"));
    copy_sample(&n1);
    copy_sample(&n2);
    // Night two: the DOSE_UNEXPECTED and DX_OFF_LABEL drug lines are voided,
    // and a new person brings a new anomaly.
    std::fs::write(n2.join("reversals.csv"), reversals_of(&[("CLM001026", "1"), ("CLM001013", "1")])).unwrap();
    write_csv(
        &n2,
        "new.csv",
        &["N1,1,P0900,Aetna,2026-02-20,12,J2350,,600,50242-0150-01,R51.9,100", "N1,2,P0900,Aetna,2026-02-20,12,J2930,,1,,R51.9,5"],
    );
    let (o1, o2) = (t.path().join("out1"), t.path().join("out2"));
    run_ok(&o1, &["--run-date", "2026-02-25", n1.to_str().unwrap()]);
    run_ok(&o2, &["--run-date", "2026-02-26", "--previous", o1.to_str().unwrap(), n2.to_str().unwrap()]);

    let (f1, f2) = (findings(&o1), findings(&o2));
    assert!(f1.iter().all(|f| f.2 == "new" && f.3 == "2026-02-25"), "without --previous every finding is new");
    let (i1, i2) = (ids(&o1), ids(&o2));
    for (id, rule, status, first_seen) in &f2 {
        if i1.contains(id) {
            assert_eq!((status.as_str(), first_seen.as_str()), ("open", "2026-02-25"), "{rule}");
        } else {
            assert_eq!((status.as_str(), first_seen.as_str()), ("new", "2026-02-26"), "{rule}");
        }
    }
    let new_rules: Vec<&str> = f2.iter().filter(|f| f.2 == "new").map(|f| f.1.as_str()).collect();
    assert_eq!(new_rules, ["DX_NOT_MS"], "the one planted anomaly is new");

    // resolved.parquet is exactly night one minus night two.
    let (n, rows) = read_table(&o2.join("resolved.parquet"));
    let (id, rule, reason, on) = (col(&n, "finding_id"), col(&n, "rule_id"), col(&n, "resolved_reason"), col(&n, "resolved_on"));
    let resolved: BTreeSet<String> = rows.iter().map(|r| r[id].clone()).collect();
    assert_eq!(resolved, i1.difference(&i2).cloned().collect::<BTreeSet<_>>());
    let mut why: Vec<(&str, &str)> = rows.iter().map(|r| (r[rule].as_str(), r[reason].as_str())).collect();
    why.sort();
    assert_eq!(why, [("DOSE_UNEXPECTED", "line_reversed"), ("DX_OFF_LABEL", "line_reversed")]);
    assert!(rows.iter().all(|r| r[on] == "2026-02-26" && r[col(&n, "first_seen")] == "2026-02-25"));

    let m = manifest(&o2);
    assert_eq!(m["previous"]["run_id"], manifest(&o1)["run_id"]);
    assert_eq!((m["lifecycle"]["new"].as_u64(), m["lifecycle"]["resolved"].as_u64()), (Some(1), Some(2)));
    let summary = std::fs::read_to_string(o2.join("summary.md")).unwrap();
    assert!(summary.contains("**1 new**") && summary.contains("**2 resolved**"), "{summary}");
    assert!(summary.find("Since the previous run").unwrap() < summary.find("## Totals").unwrap(), "the summary opens with it");
}

#[test]
fn ids_do_not_depend_on_file_names_or_splits() {
    let t = tmp();
    let base = t.path().join("base");
    run_ok(&base, &[sample_csv().to_str().unwrap()]);
    let renamed = t.path().join("extract_2026-02.csv");
    std::fs::copy(sample_csv(), &renamed).unwrap();
    let text = std::fs::read_to_string(sample_csv()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let half = lines.len() / 2;
    let (a, b) = (t.path().join("part_a.csv"), t.path().join("part_b.csv"));
    std::fs::write(&a, format!("{}\n", lines[..half].join("\n"))).unwrap();
    std::fs::write(&b, format!("{}\n{}\n", lines[0], lines[half..].join("\n"))).unwrap();
    let (o_ren, o_split) = (t.path().join("renamed"), t.path().join("split"));
    run_ok(&o_ren, &[renamed.to_str().unwrap()]);
    run_ok(&o_split, &[a.to_str().unwrap(), b.to_str().unwrap()]);
    assert!(!ids(&base).is_empty());
    assert_eq!(ids(&base), ids(&o_ren));
    assert_eq!(ids(&base), ids(&o_split));
    // With 2 threads or 1, and under another policy version, too.
    let o1 = t.path().join("one_thread");
    let policy = t.path().join("policy.toml");
    let text =
        std::fs::read_to_string(repo().join("policy/default.toml")).unwrap().replace("version = \"2026.12.0\"", "version = \"2027.01.0\"");
    std::fs::write(&policy, text).unwrap();
    run_ok(&o1, &["--threads", "1", "--policy", policy.to_str().unwrap(), sample_csv().to_str().unwrap()]);
    assert_eq!(ids(&base), ids(&o1));
}

fn diff(old: &Path, new: &Path, extra: &[&str]) -> std::process::Output {
    bin().arg("diff").arg(old).arg(new).args(extra).output().unwrap()
}

#[test]
fn diff_shows_what_a_policy_change_would_do() {
    let t = tmp();
    let a = t.path().join("current");
    run_ok(&a, &[sample_dir().to_str().unwrap()]);
    let o = diff(&a, &a, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("the runs make the same findings"));

    // Proposed policy: DUPLICATE_PER_DIEM switched off.
    let policy = t.path().join("proposed.toml");
    let text = std::fs::read_to_string(repo().join("policy/default.toml"))
        .unwrap()
        .replace("[rules.DUPLICATE_PER_DIEM]\nseverity = \"warning\"", "[rules.DUPLICATE_PER_DIEM]\nenabled = false");
    std::fs::write(&policy, text).unwrap();
    let b = t.path().join("proposed");
    run_ok(&b, &["--policy", policy.to_str().unwrap(), sample_dir().to_str().unwrap()]);
    let d = t.path().join("diff.parquet");
    let o = diff(&a, &b, &["--out", d.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.lines().any(|l| l.starts_with("DUPLICATE_PER_DIEM") && l.split_whitespace().nth(1) == Some("1")), "{stdout}");
    let (n, rows) = read_table(&d);
    let want = findings(&a).iter().filter(|f| f.1 == "DUPLICATE_PER_DIEM").count();
    assert_eq!(rows.len(), want);
    assert!(rows.iter().all(|r| r[col(&n, "rule_id")] == "DUPLICATE_PER_DIEM" && r[col(&n, "side")] == "old"));

    // Reconciled with the current run, the switched-off rule's findings resolve as rule_disabled.
    let c = t.path().join("reconciled");
    run_ok(&c, &["--policy", policy.to_str().unwrap(), "--previous", a.to_str().unwrap(), sample_dir().to_str().unwrap()]);
    let (n, rows) = read_table(&c.join("resolved.parquet"));
    assert_eq!(rows.len(), want);
    assert!(rows.iter().all(|r| r[col(&n, "resolved_reason")] == "rule_disabled"));
}

#[test]
fn a_bad_previous_directory_is_a_usage_error() {
    let t = tmp();
    let out = t.path().join("out");
    let check = |prev: &Path, needle: &str| {
        let o = run(&out, &["--previous", prev.to_str().unwrap(), sample_csv().to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{needle:?} not in {err}");
    };
    check(&t.path().join("nope"), "no such output directory");
    let partial = t.path().join("partial");
    run_ok(&partial, &[sample_csv().to_str().unwrap()]);
    std::fs::remove_file(partial.join("_SUCCESS")).unwrap();
    check(&partial, "incomplete output (no _SUCCESS)");
    let future = t.path().join("future");
    run_ok(&future, &[sample_csv().to_str().unwrap()]);
    let m = std::fs::read_to_string(future.join("manifest.json")).unwrap().replace("\"catalogue_version\": 3", "\"catalogue_version\": 9");
    std::fs::write(future.join("manifest.json"), m).unwrap();
    check(&future, "written by rule catalogue v9");
}

/// A gzip extract large enough that a one-thread run lasts a second or more.
fn slow_extract(dir: &Path) -> PathBuf {
    let csv = dir.join("big.csv");
    let o = bin().args(["generate", "--lines", "1500000", "--cohort", "2000", "--seed", "3", "--out"]).arg(&csv).output().unwrap();
    assert!(o.status.success());
    let gz = dir.join("big.csv.gz");
    let mut enc = flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), flate2::Compression::fast());
    enc.write_all(&std::fs::read(&csv).unwrap()).unwrap();
    enc.finish().unwrap();
    std::fs::remove_file(&csv).unwrap();
    gz
}

fn spawn_run(out: &Path, input: &Path) -> Child {
    bin().args(["run", "--quiet", "--threads", "1", "--out"]).arg(out).arg(input).stderr(Stdio::piped()).spawn().unwrap()
}

/// Waits until the run `pid` holds the lock of `out`.
fn wait_for_lock(out: &Path, pid: u32) {
    let lock = out.with_file_name(format!(".{}.lock", out.file_name().unwrap().to_string_lossy()));
    let t0 = Instant::now();
    while std::fs::read_to_string(&lock).map(|s| s.trim() != pid.to_string()).unwrap_or(true) {
        assert!(t0.elapsed() < Duration::from_secs(10), "run never took the lock");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn one_run_per_output_directory() {
    let t = tmp();
    let gz = slow_extract(t.path());
    let out = t.path().join("out");
    let first = spawn_run(&out, &gz);
    wait_for_lock(&out, first.id());
    let t0 = Instant::now();
    let second = run(&out, &[sample_csv().to_str().unwrap()]);
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(75), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(2), "the second run exits at once");
    assert!(err.contains("is writing this output directory") && err.trim_end().lines().count() == 1, "{err}");
    let done = first.wait_with_output().unwrap();
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    assert!(out.join("_SUCCESS").exists());
    // The lock died with the first run.
    run_ok(&out, &[sample_csv().to_str().unwrap()]);
}

#[test]
fn sigterm_stops_the_run_and_keeps_the_previous_output() {
    let t = tmp();
    let gz = slow_extract(t.path());
    let out = t.path().join("out");
    run_ok(&out, &[sample_csv().to_str().unwrap()]);
    let before = std::fs::read(out.join("findings.parquet")).unwrap();
    let child = spawn_run(&out, &gz);
    wait_for_lock(&out, child.id());
    std::thread::sleep(Duration::from_millis(200));
    let t0 = Instant::now();
    // SAFETY: signals a child process this test spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let o = child.wait_with_output().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(2), "stops within a second (took {:?})", t0.elapsed());
    assert_eq!(o.status.code(), Some(143), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read(out.join("findings.parquet")).unwrap(), before, "previous output intact");
    let staging: Vec<String> = std::fs::read_dir(t.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(staging.is_empty(), "staging left: {staging:?}");
}

#[test]
fn sigterm_while_spilling_removes_the_spill_files() {
    let t = tmp();
    let gz = slow_extract(t.path());
    let out = t.path().join("out");
    let child = bin()
        .args(["run", "--quiet", "--threads", "1", "--memory-limit", "1M", "--out"])
        .arg(&out)
        .arg(&gz)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let spill = t.path().join(format!(".out.spill-{}", child.id()));
    let t0 = Instant::now();
    while !spill.exists() {
        assert!(t0.elapsed() < Duration::from_secs(20), "the run never spilled");
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: signals a child process this test spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(143), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!spill.exists(), "spill directory left behind");
    assert!(!out.exists(), "no output from a stopped first run");
}

#[test]
fn a_file_appended_to_while_read_fails() {
    let t = tmp();
    let gz = slow_extract(t.path());
    let out = t.path().join("out");
    let child = spawn_run(&out, &gz);
    wait_for_lock(&out, child.id());
    std::thread::sleep(Duration::from_millis(100));
    // Another gzip member: the extract is still being written.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(b"C999,1,professional,P9,M9,Aetna,x,2025-01-01,2025-01-01,2025-01-01,2025-01-01,11,99213,,,1,,,,I10,,,1,1,1,,\n")
        .unwrap();
    std::fs::OpenOptions::new().append(true).open(&gz).unwrap().write_all(&enc.finish().unwrap()).unwrap();
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("big.csv.gz: changed while it was read"), "{err}");
    assert!(!out.join("_SUCCESS").exists());
}

/// An output directory of the sample written by the release before this
/// one, whose tables polars wrote (large strings, its own encodings):
/// tonight's run, `diff` and `explain` still read it.
#[test]
fn an_earlier_releases_output_still_loads() {
    let t = tmp();
    let old = repo().join("tests/fixtures/polars-written-run");
    let new = t.path().join("new");
    // The sample as that release read it: without P0030, added for
    // DX_CODE_INVALID (catalogue v3).
    let sample = t.path().join("sample");
    copy_sample(&sample);
    let claims = std::fs::read_to_string(sample.join("claims.csv")).unwrap();
    std::fs::write(
        sample.join("claims.csv"),
        claims.lines().filter(|l| !l.contains(",P0030,")).map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
    run_ok(&new, &["--previous", old.to_str().unwrap(), sample.to_str().unwrap()]);
    let (a, b) = (findings(&old), findings(&new));
    assert!(a.len() > 5, "{a:?}");
    assert_eq!(a.iter().map(|f| &f.0).collect::<Vec<_>>(), b.iter().map(|f| &f.0).collect::<Vec<_>>());
    // Every finding was seen by the earlier run, on its own run date.
    assert!(b.iter().zip(&a).all(|(n, o)| n.2 == "open" && n.3 == o.3), "{b:?}");

    let o = diff(&old, &new, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));

    let explain = |dir: &Path| bin().args(["explain", "--out"]).arg(dir).args(["--person", "P0003"]).output().unwrap();
    let (eo, en) = (explain(&old), explain(&new));
    assert!(eo.status.success(), "{}", String::from_utf8_lossy(&eo.stderr));
    // The same timeline; only the finding's status differs (new then, open now).
    assert_eq!(String::from_utf8_lossy(&eo.stdout).replace("(new)", "(open)"), String::from_utf8_lossy(&en.stdout));
}
