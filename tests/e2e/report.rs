//! The report a person opens (issue 11): report.html, `explain`, and the
//! lines a run prints on a terminal.

use std::path::Path;
use std::process::Command;

use crate::common::*;

fn sample_run(dir: &Path) -> std::path::PathBuf {
    let out = dir.join("out");
    run_ok(&out, &[sample_dir().to_str().unwrap()]);
    out
}

/// The HTML of one `<div ... id="ID">` up to the next chart or section.
fn block<'a>(html: &'a str, marker: &str) -> &'a str {
    let start = html.find(marker).unwrap_or_else(|| panic!("{marker} not in report"));
    let rest = &html[start..];
    let end = rest[1..].find("<div class=\"chart\" id=").or_else(|| rest[1..].find("<section")).map_or(rest.len(), |e| e + 1);
    &rest[..end]
}

#[test]
fn report_html_is_self_contained_and_complete() {
    let t = tmp();
    let out = sample_run(t.path());
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    // Nothing fetched from elsewhere: no script, stylesheet link, image, frame or font URL.
    for banned in ["<script", "<link", "<img", "<iframe", "@import", "url(", "src=", "href=\"http", "href='http"] {
        assert!(!html.contains(banned), "report.html contains {banned}");
    }
    // At least one SVG per chart.
    for id in ["id=\"chart-rules\"", "id=\"chart-intervals\"", "id=\"chart-months\"", "id=\"chart-programs\""] {
        assert!(block(&html, id).contains("<svg"), "no SVG in {id}");
    }
    // Every rule with findings is named.
    let (n, rows) = read_table(&out.join("findings.parquet"));
    for r in &rows {
        assert!(html.contains(&r[col(&n, "rule_id")]), "{} not named", r[col(&n, "rule_id")]);
    }
    // The seed patient's timeline shows its two findings.
    let seed = block(&html, "id=\"person-P0003\"");
    assert!(seed.contains("<svg"), "P0003 has a timeline");
    assert_eq!(seed.matches("<li>").count(), 2, "{seed}");
    assert!(seed.contains("DX_NOT_VALID_ON_DOS") && seed.contains("DUPLICATE_PER_DIEM"));
    assert!(html.contains("protected health information"));
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(out.join("report.html")).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
}

/// Chromium, when the machine has it (CI installs it: there it is required).
fn chromium() -> Option<&'static str> {
    let found = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()));
    if found.is_none() && std::env::var_os("CI").is_some() {
        panic!("CI must have chromium (.ci/run installs it)");
    }
    found
}

#[test]
fn report_renders_in_headless_chromium_without_console_errors() {
    let Some(chrome) = chromium() else {
        eprintln!("skipped: no chromium on this machine (CI installs it)");
        return;
    };
    let t = tmp();
    let out = sample_run(t.path());
    let png = t.path().join("shot.png");
    let o = Command::new(chrome)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking"])
        .args(["--disable-component-update", "--disable-sync", "--hide-scrollbars", "--enable-logging=stderr", "--v=0"])
        .arg(format!("--user-data-dir={}", t.path().join("profile").display()))
        .args(["--window-size=1000,1400", &format!("--screenshot={}", png.display())])
        .arg(format!("file://{}", out.join("report.html").display()))
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{log}");
    // Chromium logs every console message (console.error and uncaught errors
    // included) as `:CONSOLE`; the page has no script, so there must be none.
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:?}");
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    // A blank 1000x1400 page compresses to a few KB; the report's charts and tables do not.
    assert!(bytes.len() > 40_000, "the page looks blank ({} bytes)", bytes.len());
}

fn explain(out: &Path, person: &str, extra: &[&str]) -> std::process::Output {
    bin().args(["explain", "--out"]).arg(out).args(["--person", person]).args(extra).output().unwrap()
}

#[test]
fn explain_a_clean_person_the_seed_person_and_an_unknown_one() {
    let t = tmp();
    let out = sample_run(t.path());
    let clean = explain(&out, "P0001", &[]);
    assert!(clean.status.success());
    let text = String::from_utf8_lossy(&clean.stdout);
    assert!(text.contains("Administrations (5):") && text.contains("initiation_second") && text.contains("Findings (0):"), "{text}");
    assert!(text.contains("none: this person's claims pass every rule"));

    let seed = explain(&out, "P0003", &[]);
    let text = String::from_utf8_lossy(&seed.stdout);
    assert!(text.contains("168 days after the previous"), "{text}");
    assert!(text.contains("S9490") && text.contains("per_diem"), "the per diem lines: {text}");
    assert!(text.contains("Findings (2):") && text.contains("DX_NOT_VALID_ON_DOS") && text.contains("DUPLICATE_PER_DIEM"), "{text}");

    let page = t.path().join("p3.html");
    assert!(explain(&out, "P0003", &["--html", page.to_str().unwrap()]).status.success());
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("<svg") && html.contains("DUPLICATE_PER_DIEM") && !html.contains("<script"));

    let unknown = explain(&out, "NOBODY", &[]);
    let err = String::from_utf8_lossy(&unknown.stderr);
    assert_eq!(unknown.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("no person \"NOBODY\""), "{err}");

    std::fs::remove_file(out.join("_SUCCESS")).unwrap();
    let incomplete = explain(&out, "P0003", &[]);
    assert_eq!(incomplete.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&incomplete.stderr).contains("no _SUCCESS"));
}

#[test]
fn a_run_says_what_it_did_unless_quiet() {
    let t = tmp();
    let out = t.path().join("out");
    let o = bin().arg("run").arg("--out").arg(&out).arg(sample_dir()).output().unwrap();
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 4, "{err}");
    assert!(lines[0].contains("285 rows read from 3 file(s), 2 rejected; 30 persons"), "{err}");
    assert!(lines[1].contains("26 findings: 18 error, 6 warning, 2 info"), "{err}");
    assert!(lines[2].starts_with("claims-audit: top rules: POS_NOT_HOME 3"), "{err}");
    assert!(lines[3].ends_with("report.html"), "{err}");
    // Counts and rule ids only: no person, code or date.
    assert!(!err.contains("P00") && !err.contains("J2350") && !err.contains("2025-"), "{err}");
    let quiet = run(&t.path().join("q"), &[sample_dir().to_str().unwrap()]);
    assert!(quiet.status.success() && quiet.stderr.is_empty());
}
