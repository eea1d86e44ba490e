//! ICD-10-CM release files a user downloads from CMS, layered on top of the
//! embedded code set (`model::codeset`): the "code descriptions in tabular
//! order" file (plain text, or inside the zip CMS publishes), or the codes
//! file. `--codesets DIR`, the policy's `[codeset] files` and
//! `claims-audit codes import FILE` read them here.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::model::Date;
use crate::model::codeset::{CodeSet, Release, key};

/// One release file read: its effective date, the codes it makes billable,
/// and how many headers it lists.
#[derive(Debug, Clone)]
pub struct ReleaseFile {
    pub path: PathBuf,
    pub name: String,
    pub effective: Date,
    /// Sorted, unique keys.
    pub billable: Vec<u64>,
    pub headers: usize,
}

/// What a release file changes against a table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    pub added: Vec<String>,
    pub ended: Vec<String>,
    pub last_before: Option<Date>,
    pub last_after: Option<Date>,
}

/// The effective date a file name says: `...April-2027...` or `...Jan-2021`
/// is the first of that month; a bare fiscal year (`icd10cm-order-2028.txt`,
/// `2028-Code-Descriptions...zip`) is October 1 of the year before.
pub fn effective_from_name(name: &str) -> Option<Date> {
    let low = name.to_ascii_lowercase();
    let year = low
        .as_bytes()
        .windows(4)
        .enumerate()
        .filter(|(i, w)| {
            w.iter().all(u8::is_ascii_digit)
                && !low.as_bytes().get(i + 4).is_some_and(u8::is_ascii_digit)
                && (*i == 0 || !low.as_bytes()[i - 1].is_ascii_digit())
        })
        .filter_map(|(_, w)| std::str::from_utf8(w).ok()?.parse::<i32>().ok())
        .find(|y| (2015..=2099).contains(y))?;
    const MONTHS: [(&str, u32); 4] = [("jan", 1), ("apr", 4), ("jul", 7), ("oct", 10)];
    match MONTHS.iter().find(|(m, _)| low.contains(m)) {
        Some(&(_, m)) => Date::from_ymd(year, m, 1),
        None => Date::from_ymd(year - 1, 10, 1),
    }
}

/// The last date a release starting on `eff` is known to cover: the day
/// before the next date CMS may publish an update (April 1 or October 1).
pub fn covered_until(eff: Date) -> Date {
    let (y, m, _) = eff.ymd();
    let next = if m >= 10 {
        Date::from_ymd(y + 1, 4, 1)
    } else if m >= 4 {
        Date::from_ymd(y, 10, 1)
    } else {
        Date::from_ymd(y, 4, 1)
    };
    next.unwrap_or(eff).add_days(-1)
}

/// Reads an order file (fixed width: order number, code, flag 0/1, ...) or a
/// codes file (billable code, space, description), plain or in a zip.
pub fn read_release(path: &Path, effective: Option<Date>) -> Result<ReleaseFile> {
    let bytes = std::fs::read(path).map_err(|e| Error::input(path, format!("cannot read: {e}")))?;
    let (member, text) = if bytes.starts_with(b"PK\x03\x04") {
        let (name, data) = zip_member(&bytes).map_err(|m| Error::input(path, m))?;
        (Some(name), data)
    } else {
        (None, bytes)
    };
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let effective =
        effective.or_else(|| member.as_deref().and_then(effective_from_name)).or_else(|| effective_from_name(&file_name)).ok_or_else(
            || Error::input(path, "cannot tell the release's effective date from the file name (give it, e.g. --effective 2027-10-01)"),
        )?;
    let text = String::from_utf8_lossy(&text);
    let mut billable = Vec::new();
    let mut headers = 0;
    for (n, l) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let b = l.as_bytes();
        let order = b.len() > 14 && b[..5].iter().all(u8::is_ascii_digit) && b[5] == b' ';
        let (code, flag) =
            if order { (l.get(6..13).unwrap_or("").trim(), b[14]) } else { (l.split_whitespace().next().unwrap_or(""), b'1') };
        let bad = || {
            Error::input(
                path,
                format!("line {}: not an ICD-10-CM order or codes file line: {:?}", n + 1, l.chars().take(40).collect::<String>()),
            )
        };
        let k = key(code).filter(|_| code.len() >= 3 && code.as_bytes()[0].is_ascii_alphabetic()).ok_or_else(bad)?;
        match flag {
            b'1' => billable.push(k),
            b'0' => headers += 1,
            _ => return Err(bad()),
        }
    }
    billable.sort_unstable();
    billable.dedup();
    if billable.len() < 1000 {
        return Err(Error::input(path, format!("only {} billable codes: not a whole ICD-10-CM release", billable.len())));
    }
    let name = member.unwrap_or(file_name);
    Ok(ReleaseFile { path: path.to_path_buf(), name, effective, billable, headers })
}

/// The order (or codes) file inside a CMS zip (the `zip` crate reads it:
/// central directory, data descriptors, zip64).
fn zip_member(zip: &[u8]) -> std::result::Result<(String, Vec<u8>), String> {
    use std::io::Read;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).map_err(|e| format!("not a readable zip: {e}"))?;
    let mut names = archive
        .file_names()
        .map(|n| n.map(|n| n.into_owned()))
        .collect::<std::result::Result<Vec<String>, _>>()
        .map_err(|e| format!("damaged zip: {e}"))?;
    names.sort();
    let low = |n: &str| n.to_ascii_lowercase();
    let pick = names
        .iter()
        .find(|n| low(n).contains("order") && low(n).ends_with(".txt"))
        .or_else(|| names.iter().find(|n| low(n).contains("codes") && low(n).ends_with(".txt") && !low(n).contains("addend")))
        .ok_or("the zip holds no order file (icd10cm-order-*.txt) or codes file")?;
    let mut member = archive.by_name(pick).map_err(|e| format!("{pick}: {e}"))?;
    let mut data = Vec::new();
    member.read_to_end(&mut data).map_err(|e| format!("{pick}: {e}"))?;
    Ok((pick.rsplit('/').next().unwrap_or(pick).to_string(), data))
}

/// What layering `f` on `table` adds: codes billable from its date that were
/// not the day before, and codes that end.
pub fn change(table: &CodeSet, f: &ReleaseFile) -> Change {
    use crate::model::codeset::code_of;
    // The release in force the day before (the table's last one when the
    // file starts after the table ends: that one stays in force).
    let before = table.billable_keys_on(f.effective.add_days(-1).min(table.last_date()));
    let after = &f.billable;
    let added = after.iter().filter(|k| before.binary_search(k).is_err()).map(|&k| code_of(k)).collect();
    let ended = before.iter().filter(|k| after.binary_search(k).is_err()).map(|&k| code_of(k)).collect();
    Change { added, ended, last_before: Some(table.last_date()), last_after: Some(covered_until(f.effective).max(table.last_date())) }
}

/// How a release file differs from the table on its own date: (codes only
/// in the file, codes only in the table). Both empty: the table holds it.
pub fn differences_on(table: &CodeSet, f: &ReleaseFile) -> (usize, usize) {
    let ours = table.billable_keys_on(f.effective);
    let only_file = f.billable.iter().filter(|k| ours.binary_search(k).is_err()).count();
    let only_table = ours.iter().filter(|k| f.billable.binary_search(k).is_err()).count();
    (only_file, only_table)
}

/// `table` with the release files layered on, oldest first. A release
/// older than the table's newest must agree with it (it adds nothing).
pub fn layer(table: &CodeSet, files: &[ReleaseFile]) -> Result<CodeSet> {
    let mut files: Vec<&ReleaseFile> = files.iter().collect();
    files.sort_by_key(|f| f.effective);
    let mut t = table.clone();
    for f in files {
        let newest = t.releases().last().map(|r| r.effective);
        if newest.is_some_and(|n| f.effective <= n) {
            let (only_file, only_table) = differences_on(&t, f);
            if only_file + only_table > 0 {
                return Err(Error::Config(format!(
                    "{}: release of {} is not newer than the code set's newest ({}) and disagrees with it ({only_file} codes only in the file, {only_table} only in the code set)",
                    f.path.display(),
                    f.effective,
                    newest.map(|d| d.to_string()).unwrap_or_default(),
                )));
            }
            continue;
        }
        let release = Release { name: f.name.clone(), effective: f.effective, source: f.path.display().to_string() };
        t = t.with_release(release, &f.billable, covered_until(f.effective));
    }
    Ok(t)
}

/// The release files of a folder (`*.txt`, `*.zip`), or one file.
pub fn read_dir(dir: &Path) -> Result<Vec<ReleaseFile>> {
    if dir.is_file() {
        return Ok(vec![read_release(dir, None)?]);
    }
    let rd = std::fs::read_dir(dir).map_err(|e| Error::input(dir, format!("cannot read the code set folder: {e}")))?;
    let mut paths: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("txt") || x.eq_ignore_ascii_case("zip")))
        .collect();
    paths.sort();
    paths.iter().map(|p| read_release(p, None)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        Date::parse(s).unwrap()
    }

    #[test]
    fn effective_dates_from_cms_file_names() {
        assert_eq!(effective_from_name("icd10cm-order-2028.txt"), Some(d("2027-10-01")));
        assert_eq!(effective_from_name("icd10cm-order-April-2027.txt"), Some(d("2027-04-01")));
        assert_eq!(effective_from_name("April-1-2027-Code-Descriptions-in-Tabular-Order.zip"), Some(d("2027-04-01")));
        assert_eq!(effective_from_name("icd10cm-order-Jan-2021.txt"), Some(d("2021-01-01")));
        assert_eq!(effective_from_name("order.txt"), None);
        assert_eq!(covered_until(d("2027-10-01")), d("2028-03-31"));
        assert_eq!(covered_until(d("2027-04-01")), d("2027-09-30"));
    }

    /// An order file of the current release, with G35.A split in two.
    fn fy2028(dir: &Path) -> PathBuf {
        use crate::model::codeset::code_of;
        let t = CodeSet::embedded();
        let mut codes: Vec<String> = t.billable_keys_on(d("2027-03-31")).into_iter().map(code_of).filter(|c| c != "G35A").collect();
        codes.extend(["G35A1".to_string(), "G35A2".to_string()]);
        codes.sort();
        let mut text = String::from("00001 A00     0 Cholera                                                      Cholera\n");
        for (i, c) in codes.iter().enumerate() {
            text.push_str(&format!("{:05} {:<7} 1 {:<60} {}\n", i + 2, c, "x", "x"));
        }
        text.push_str(&format!("{:05} {:<7} 0 {:<60} {}\n", 99999, "G35A", "MS", "MS"));
        let p = dir.join("icd10cm-order-2028.txt");
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn an_order_file_adds_a_release() {
        let dir = tempfile::tempdir().unwrap();
        let f = read_release(&fy2028(dir.path()), None).unwrap();
        assert_eq!(f.effective, d("2027-10-01"));
        let c = change(CodeSet::embedded(), &f);
        assert!(c.added == ["G35A1", "G35A2"], "{} added", c.added.len());
        assert!(c.ended == ["G35A"], "{} ended", c.ended.len());
        let t = layer(CodeSet::embedded(), &[f]).unwrap();
        assert_eq!(t.last_date(), d("2028-03-31"));
        assert!(t.billable_on("G35A1", d("2028-01-05")));
        assert!(t.is_header_on("G35A", d("2028-01-05")));
    }

    #[test]
    fn a_zipped_order_file_reads_as_the_plain_one() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let plain = std::fs::read(fy2028(dir.path())).unwrap();
        // A CMS-like zip: the order file, deflated, in a folder beside another member.
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        w.start_file("Code Descriptions/icd10cm-addenda-2028.txt", opts).unwrap();
        w.write_all(b"Add:\n").unwrap();
        w.start_file("Code Descriptions/icd10cm-order-2028.txt", opts).unwrap();
        w.write_all(&plain).unwrap();
        let z = w.finish().unwrap().into_inner();
        let zp = dir.path().join("release.zip");
        std::fs::write(&zp, z).unwrap();
        let f = read_release(&zp, None).unwrap();
        assert_eq!(f.effective, d("2027-10-01"));
        assert_eq!(f.name, "icd10cm-order-2028.txt");
        assert_eq!(f.billable.len(), CodeSet::embedded().billable_keys_on(d("2027-03-31")).len() + 1);
    }

    #[test]
    fn an_older_release_the_table_holds_adds_nothing() {
        use crate::model::codeset::code_of;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("icd10cm-order-Jan-2021.txt");
        let codes = CodeSet::embedded().billable_keys_on(d("2021-01-01"));
        let text: String = codes.iter().enumerate().map(|(i, &k)| format!("{:05} {:<7} 1 x\n", i, code_of(k))).collect();
        std::fs::write(&p, text).unwrap();
        let f = read_release(&p, None).unwrap();
        assert_eq!(differences_on(CodeSet::embedded(), &f), (0, 0));
        assert_eq!(layer(CodeSet::embedded(), &[f]).unwrap().releases().len(), CodeSet::embedded().releases().len());
    }

    #[test]
    fn an_older_release_that_disagrees_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("icd10cm-order-2026.txt");
        let mut text = String::new();
        for i in 0..2000 {
            text.push_str(&format!("{:05} {:<7} 1 x\n", i, format!("A{i:04}")));
        }
        std::fs::write(&p, text).unwrap();
        let f = read_release(&p, None).unwrap();
        assert!(layer(CodeSet::embedded(), &[f]).is_err());
        std::fs::write(&p, "00001 G35     1 MS\n").unwrap();
        assert!(read_release(&p, None).is_err());
    }
}
