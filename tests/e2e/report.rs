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
    let end = ["<div class=\"chart\" id=", "<section"].iter().filter_map(|m| rest[1..].find(m)).min().map_or(rest.len(), |e| e + 1);
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

/// "$37,200.00" as a number.
fn dollars(s: &str) -> f64 {
    s.trim().trim_start_matches('$').replace(',', "").parse().unwrap_or_else(|_| panic!("not an amount: {s:?}"))
}

/// The "Act on first" rows: (severity, amount).
fn act_first_rows(html: &str) -> Vec<(String, f64)> {
    let start = html.find("id=\"act-first-table\"").expect("an Act on first table");
    let table = &html[start..start + html[start..].find("</table>").unwrap()];
    table
        .split("<tr>")
        .skip(2)
        .map(|row| {
            let sev = row.split("class=\"sev-").nth(1).and_then(|x| x.split('"').next()).unwrap_or_default().to_string();
            let amount = row.split("class=\"n amount\">").nth(1).and_then(|x| x.split('<').next()).unwrap_or_default();
            (sev, dollars(amount))
        })
        .collect()
}

#[test]
fn act_on_first_is_ordered_by_money_with_errors_and_warnings_before_info() {
    let t = tmp();
    let out = sample_run(t.path());
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let rows = act_first_rows(&html);
    let (n, findings) = read_table(&out.join("findings.parquet"));
    assert_eq!(rows.len(), findings.len().min(25));
    let info_from = rows.iter().position(|r| r.0 == "info").unwrap_or(rows.len());
    assert!(rows[info_from..].iter().all(|r| r.0 == "info"), "info after errors and warnings: {rows:?}");
    for group in [&rows[..info_from], &rows[info_from..]] {
        assert!(group.windows(2).all(|w| w[0].1 >= w[1].1), "by money, largest first: {rows:?}");
    }
    // The top row is the largest amount of any finding, and the card gives
    // the distinct-line total the manifest has.
    let most = findings.iter().map(|r| r[col(&n, "amount_at_stake")].parse::<f64>().unwrap_or(0.0)).fold(0.0, f64::max);
    assert_eq!(rows[0].1, most);
    let total = manifest(&out)["totals"]["amount_at_stake_distinct_lines"].as_f64().unwrap();
    let card = html.split("id=\"card-money\"><b>").nth(1).and_then(|x| x.split('<').next()).unwrap();
    assert!((dollars(card) - total).abs() < 0.005, "{card} vs {total}");
    // The sample's info findings (a missing premedication, a late dose) put no money at stake.
    assert!(rows.iter().filter(|r| r.0 == "info").all(|r| r.1 == 0.0), "{rows:?}");
}

#[test]
fn first_screen_holds_the_money_card_and_the_act_on_first_table() {
    let Some(chrome) = chromium() else {
        eprintln!("skipped: no chromium on this machine (CI installs it)");
        return;
    };
    let t = tmp();
    let out = sample_run(t.path());
    // A copy of the page with a probe that writes where things were laid out
    // into the DOM Chromium dumps (the report itself has no script).
    let probe = "<script>const r = s => { const b = document.querySelector(s).getBoundingClientRect(); return [b.top, b.bottom]; };
document.body.setAttribute('data-layout', JSON.stringify({vh: innerHeight, money: r('#card-money'), table: r('#act-first-table'), row5: r('#act-first-table tr:nth-child(6)')}));</script></body>";
    let page = t.path().join("probe.html");
    std::fs::write(&page, std::fs::read_to_string(out.join("report.html")).unwrap().replace("</body>", probe)).unwrap();
    let o = Command::new(chrome)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--dump-dom"])
        .arg(format!("--user-data-dir={}", t.path().join("profile").display()))
        .arg("--window-size=1400,900")
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let dom = String::from_utf8_lossy(&o.stdout);
    let attr = dom.split("data-layout=\"").nth(1).and_then(|x| x.split('"').next()).expect("the probe ran").replace("&quot;", "\"");
    let l: serde_json::Value = serde_json::from_str(&attr).unwrap();
    let (vh, at) = (l["vh"].as_f64().unwrap(), |k: &str, i: usize| l[k][i].as_f64().unwrap());
    assert!(at("money", 1) <= vh, "the money card is on the first screen: {l}");
    assert!(at("table", 0) < vh && at("row5", 1) <= vh, "the Act on first table and its first five rows are on the first screen: {l}");
}

#[test]
fn with_previous_zero_new_is_not_red_and_resolved_findings_are_listed() {
    let t = tmp();
    let first = sample_run(t.path());
    // The same extracts again: nothing new, nothing resolved.
    let again = t.path().join("again");
    run_ok(&again, &["--previous", first.to_str().unwrap(), sample_dir().to_str().unwrap()]);
    let html = std::fs::read_to_string(again.join("report.html")).unwrap();
    let card = html.split("id=\"card-new\">").nth(1).and_then(|x| x.split("</div>").next()).unwrap();
    assert!(card.starts_with("<b class=\"\">0</b>"), "0 new, not red: {card}");
    assert!(!html.contains("id=\"resolved\""), "nothing resolved, no list");
    // Without the pharmacy extract, the cross-benefit duplicate and the
    // pharmacy-supplied dose error are resolved, and listed.
    let medical = t.path().join("medical");
    run_ok(&medical, &["--previous", first.to_str().unwrap(), sample_csv().to_str().unwrap()]);
    let html = std::fs::read_to_string(medical.join("report.html")).unwrap();
    let resolved = &html[html.find("id=\"resolved\"").expect("a resolved list")..];
    assert!(resolved.contains("CROSS_BENEFIT_DUPLICATE") && resolved.contains("P0027"), "{resolved}");
    // Without --previous the summary's sentence reads right for one finding.
    let one = t.path().join("one");
    let csv = t.path().join("one.csv");
    let sample = std::fs::read_to_string(sample_csv()).unwrap();
    let keep: Vec<&str> = sample.lines().filter(|l| l.starts_with("claim_id") || l.contains(",P0016,")).collect();
    std::fs::write(&csv, keep.join("\n") + "\n").unwrap();
    run_ok(&one, &[csv.to_str().unwrap()]);
    let summary = std::fs::read_to_string(one.join("summary.md")).unwrap();
    assert!(summary.contains("the one finding is new") && !summary.contains("all 1 findings"), "{summary}");
}

#[test]
fn money_totals_count_each_line_once_and_rules_show_each_basis() {
    let t = tmp();
    let out = sample_run(t.path());
    let (n, rows) = read_table(&out.join("findings.parquet"));
    let amount = |r: &Vec<String>| r[col(&n, "amount_at_stake")].parse::<f64>().unwrap_or(0.0);
    let mut by_line: std::collections::BTreeMap<(String, String, String), f64> = Default::default();
    for r in &rows {
        let key = (r[col(&n, "person_id")].clone(), r[col(&n, "claim_id")].clone(), r[col(&n, "claim_line_number")].clone());
        let e = by_line.entry(key).or_default();
        *e = e.max(amount(r));
    }
    let m = manifest(&out);
    let total = m["totals"]["amount_at_stake_distinct_lines"].as_f64().unwrap();
    assert!((total - by_line.values().sum::<f64>()).abs() < 0.005);
    let per_rule: f64 = m["rules"].as_array().unwrap().iter().map(|r| r["amount_at_stake"].as_f64().unwrap()).sum();
    assert!((per_rule - rows.iter().map(amount).sum::<f64>()).abs() < 0.005);
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(summary.contains("each line counted once at the largest amount among its findings"), "{summary}");

    let o = bin().arg("rules").output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    let row = |id: &str| text.lines().find(|l| l.starts_with(&format!("{id} "))).unwrap_or_default().to_string();
    assert!(row("CROSS_BENEFIT_DUPLICATE").contains(" smaller_payment "), "{text}");
    assert!(row("PREMED_NOT_BILLED").contains(" none "), "{text}");
    assert!(row("DX_NOT_VALID_ON_DOS").contains("G35 on or after 2025-10-01"), "{text}");

    // diff's total row says how it counts.
    let o = bin().arg("diff").arg(&out).arg(&out).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("total, each claim line once at its largest amount"), "{text}");
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

    // Columns line up: every administration row starts its phase at one column.
    let doses: Vec<&str> = text.lines().skip_while(|l| !l.starts_with("Administrations")).skip(1).take_while(|l| !l.is_empty()).collect();
    let at: Vec<Option<usize>> = doses.iter().map(|l| l.find("maintenance").or_else(|| l.find("phase"))).collect();
    assert!(at.len() >= 3 && at.windows(2).all(|w| w[0] == w[1] && w[0].is_some()), "{text}");
    // A pharmacy-supplied dose names its dispense.
    let rx = String::from_utf8_lossy(&explain(&out, "P0028", &[]).stdout).to_string();
    assert!(rx.contains("pharmacy dispense, claim RX"), "{rx}");

    let page = t.path().join("p3.html");
    let o = explain(&out, "P0003", &["--html", page.to_str().unwrap()]);
    assert!(o.status.success());
    let said = String::from_utf8_lossy(&o.stdout);
    assert_eq!(said.lines().count(), 1, "one line on success: {said}");
    assert!(said.contains("p3.html"), "{said}");
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
