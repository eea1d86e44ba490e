//! A file that is mostly rejects (INPUT.md): a delivery that went wrong
//! (wrong delimiter, truncated export, shifted columns) stops the run rather
//! than publish findings from what is left of it.

use std::collections::BTreeMap;

use super::sink::{FileStats, RejectRow};
use crate::error::{Error, Result};

/// When a file's rejects stop the run: at `min_rejects` rejected rows or
/// more, when they are more than `max_rate` of the rows read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RejectLimit {
    pub max_rate: f64,
    /// A small file's rate says little (the sample's pharmacy.csv rejects
    /// 1 row of 11): the rate applies from this many rejects up.
    pub min_rejects: u64,
}

impl RejectLimit {
    /// `--max-reject-rate 0.05`, `--min-rejects 10` (spec-note 81).
    pub const DEFAULT: RejectLimit = RejectLimit { max_rate: 0.05, min_rejects: 10 };
    /// Any file goes through.
    pub const OFF: RejectLimit = RejectLimit { max_rate: 1.0, min_rejects: u64::MAX };

    /// The first file (in input order) past the limit, as an input error
    /// (exit 3) naming it, its rejected and read rows and its most common
    /// reason.
    pub fn check(&self, files: &[FileStats], rejects: &[RejectRow]) -> Result<()> {
        for (k, f) in files.iter().enumerate() {
            let (rejected, read) = (f.counts.rows_rejected, f.counts.rows_read);
            if rejected < self.min_rejects.max(1) || rejected as f64 <= self.max_rate * read as f64 {
                continue;
            }
            let mut reasons: BTreeMap<&str, u64> = BTreeMap::new();
            for r in rejects.iter().filter(|r| r.file as usize == k) {
                *reasons.entry(r.code).or_default() += 1;
            }
            // Most rows first; the alphabetically first of a tie.
            let top = reasons.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)));
            let reason = top.map_or(String::new(), |(code, n)| format!("; most common reason: {code} ({n} rows)"));
            return Err(Error::input(
                &f.path,
                format!(
                    "{rejected} of {read} rows rejected ({:.1}%), more than --max-reject-rate {}{reason}; \
                     the previous output is kept (--max-reject-rate 1 lets the file through to look at its rejects)",
                    100.0 * rejected as f64 / read.max(1) as f64,
                    self.max_rate
                ),
            ));
        }
        Ok(())
    }
}

impl Default for RejectLimit {
    fn default() -> Self {
        RejectLimit::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::RowCounts;

    fn file(read: u64, rejected: u64) -> FileStats {
        FileStats {
            path: "x.csv".into(),
            counts: RowCounts { rows_read: read, rows_accepted: read - rejected, rows_rejected: rejected, ..Default::default() },
            ..Default::default()
        }
    }

    fn reject(code: &'static str) -> RejectRow {
        RejectRow { file: 0, source_line: 2, code, reason: String::new(), raw_text: String::new() }
    }

    #[test]
    fn rate_applies_from_the_minimum_count() {
        let l = RejectLimit::DEFAULT;
        assert!(l.check(&[file(11, 1)], &[]).is_ok(), "the sample's pharmacy.csv");
        assert!(l.check(&[file(12, 9)], &[]).is_ok(), "below the minimum count");
        assert!(l.check(&[file(200, 10)], &[]).is_ok(), "exactly 5%");
        assert!(l.check(&[file(199, 10)], &[]).is_err());
        assert!(RejectLimit { max_rate: 1.0, ..l }.check(&[file(10, 10)], &[]).is_ok());
    }

    #[test]
    fn names_the_most_common_reason() {
        let rejects: Vec<RejectRow> =
            [["field_count"; 7].as_slice(), &["bad_date"; 7], &["bad_units"; 3]].concat().into_iter().map(reject).collect();
        let e = RejectLimit::DEFAULT.check(&[file(20, 17)], &rejects).unwrap_err().to_string();
        assert!(e.starts_with("x.csv: 17 of 20 rows rejected (85.0%)"), "{e}");
        assert!(e.contains("most common reason: bad_date (7 rows)"), "{e}");
        assert_eq!(e.lines().count(), 1);
    }
}
