//! The same extract delivered twice (INPUT.md "The same extract delivered
//! twice"): a kept row that repeats a row of an earlier input file (same
//! kind, claim line key and every value the audit reads) is read once. The
//! copy in the earliest file in input order is kept (spec-note 93), so a
//! finding's `source_file` names that file. Works on one person's rows: a
//! person's rows are always together (in memory, in a spill group, in a
//! Spark partition), so the result does not depend on threads or spilling.

use std::borrow::Cow;

use crate::model::{Dispense, Line};

/// A kept row as a delivery holds it: which file, where, and its values.
pub trait Delivered {
    fn file(&self) -> u32;
    fn source_line(&self) -> u64;
    fn claim_key(&self) -> (&str, i64);
    /// Equal in every value the audit reads (file, line and raw text aside).
    fn same_values(&self, other: &Self) -> bool;
}

/// `rows` without the rows that repeat a row of an earlier file; counts each
/// dropped row against its file in `dropped` (indexed by file). Rows of one
/// file are never dropped: two equal lines in one file are the rules'
/// business (DUPLICATE_LINE). Borrowed, at the cost of one pass, when every
/// row comes from one file (nearly every person of a nightly run).
pub fn drop_repeats<'a, 'r, T: Delivered>(rows: &'a [&'r T], dropped: &mut Vec<u64>) -> Cow<'a, [&'r T]> {
    let Some(first) = rows.first() else { return Cow::Borrowed(rows) };
    if rows.iter().all(|r| r.file() == first.file()) {
        return Cow::Borrowed(rows);
    }
    // By key, then input order: each row is compared only with the earlier
    // rows of its key.
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_unstable_by(|&a, &b| {
        let (x, y) = (rows[a], rows[b]);
        x.claim_key().cmp(&y.claim_key()).then(x.file().cmp(&y.file())).then(x.source_line().cmp(&y.source_line()))
    });
    let mut drop = vec![false; rows.len()];
    let mut start = 0;
    while start < order.len() {
        let key = rows[order[start]].claim_key();
        let end = start + order[start..].iter().take_while(|&&i| rows[i].claim_key() == key).count();
        for j in start + 1..end {
            let r = rows[order[j]];
            // Against the kept rows of earlier files: a row equal to one of
            // them repeats it.
            if order[start..j].iter().any(|&i| !drop[i] && rows[i].file() < r.file() && rows[i].same_values(r)) {
                drop[order[j]] = true;
                let f = r.file() as usize;
                if dropped.len() <= f {
                    dropped.resize(f + 1, 0);
                }
                dropped[f] += 1;
            }
        }
        start = end;
    }
    if !drop.contains(&true) {
        return Cow::Borrowed(rows);
    }
    Cow::Owned(rows.iter().zip(&drop).filter(|(_, d)| !**d).map(|(r, _)| *r).collect())
}

impl Delivered for Line {
    fn file(&self) -> u32 {
        self.file
    }

    fn source_line(&self) -> u64 {
        self.source_line
    }

    fn claim_key(&self) -> (&str, i64) {
        (&self.claim_id, self.claim_line_number)
    }

    fn same_values(&self, o: &Line) -> bool {
        // Every field by name: a field added to `Line` must be placed here.
        let Line {
            person_id,
            claim_id,
            claim_line_number,
            service_date,
            end_date,
            hcpcs,
            units,
            dx,
            modifiers,
            pos,
            bill_type,
            ndc,
            program,
            rendering_npi,
            billing_npi,
            paid_amount,
            allowed_amount,
            charge_amount,
            presence,
            file: _,
            source_line: _,
            raw: _,
        } = self;
        *person_id == o.person_id
            && *claim_id == o.claim_id
            && *claim_line_number == o.claim_line_number
            && *service_date == o.service_date
            && *end_date == o.end_date
            && *hcpcs == o.hcpcs
            && *units == o.units
            && *dx == o.dx
            && *modifiers == o.modifiers
            && *pos == o.pos
            && *bill_type == o.bill_type
            && *ndc == o.ndc
            && *program == o.program
            && *rendering_npi == o.rendering_npi
            && *billing_npi == o.billing_npi
            && *paid_amount == o.paid_amount
            && *allowed_amount == o.allowed_amount
            // The charge is read only without a paid and an allowed amount
            // (the money at stake), and a Parquet reader leaves it unread
            // otherwise (`normalize::reads_fallback`).
            && (paid_amount.is_some() || allowed_amount.is_some() || *charge_amount == o.charge_amount)
            && *presence == o.presence
    }
}

impl Delivered for Dispense {
    fn file(&self) -> u32 {
        self.file
    }

    fn source_line(&self) -> u64 {
        self.source_line
    }

    fn claim_key(&self) -> (&str, i64) {
        (&self.claim_id, self.claim_line_number)
    }

    fn same_values(&self, o: &Dispense) -> bool {
        let Dispense {
            person_id,
            claim_id,
            claim_line_number,
            date,
            ndc,
            quantity,
            days_supply,
            paid_amount,
            allowed_amount,
            program,
            dispensing_npi,
            prescribing_npi,
            file: _,
            source_line: _,
            raw: _,
        } = self;
        *person_id == o.person_id
            && *claim_id == o.claim_id
            && *claim_line_number == o.claim_line_number
            && *date == o.date
            && *ndc == o.ndc
            && *quantity == o.quantity
            && *days_supply == o.days_supply
            && *paid_amount == o.paid_amount
            && *allowed_amount == o.allowed_amount
            && *program == o.program
            && *dispensing_npi == o.dispensing_npi
            && *prescribing_npi == o.prescribing_npi
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Date, Text};

    fn line(file: u32, source_line: u64, claim: &str, units: f64) -> Line {
        Line {
            person_id: Text::from("P1"),
            claim_id: Text::from(claim),
            claim_line_number: 1,
            service_date: Date::parse("2025-11-03").unwrap(),
            end_date: None,
            hcpcs: Text::from("J2350"),
            units,
            dx: Default::default(),
            modifiers: Default::default(),
            pos: None,
            bill_type: None,
            ndc: None,
            program: None,
            rendering_npi: None,
            billing_npi: None,
            paid_amount: None,
            allowed_amount: None,
            charge_amount: None,
            presence: Default::default(),
            file,
            source_line,
            raw: None,
        }
    }

    fn kept(rows: &[Line]) -> (Vec<(u32, u64)>, Vec<u64>) {
        let refs: Vec<&Line> = rows.iter().collect();
        let mut dropped = Vec::new();
        let out = drop_repeats(&refs, &mut dropped);
        (out.iter().map(|l| (l.file, l.source_line)).collect(), dropped)
    }

    #[test]
    fn a_row_repeating_an_earlier_file_is_read_once() {
        // Whatever order the rows arrive in, the earliest file's copy stays.
        let rows = [line(1, 2, "A", 600.0), line(0, 5, "A", 600.0), line(1, 3, "B", 600.0)];
        assert_eq!(kept(&rows), (vec![(0, 5), (1, 3)], vec![0, 1]));
        // Equal rows within one file are kept (DUPLICATE_LINE reads them).
        let rows = [line(0, 2, "A", 600.0), line(0, 3, "A", 600.0)];
        assert_eq!(kept(&rows), (vec![(0, 2), (0, 3)], vec![]));
        // Same key, another value: both stay.
        let rows = [line(0, 2, "A", 600.0), line(1, 2, "A", 300.0)];
        assert_eq!(kept(&rows), (vec![(0, 2), (1, 2)], vec![]));
        // A charge left unread beside a paid amount (a Parquet reader) is
        // no difference; without paid and allowed amounts it is one.
        let (mut a, mut b) = (line(0, 2, "A", 600.0), line(1, 2, "A", 600.0));
        (a.paid_amount, b.paid_amount, a.charge_amount) = (Some(10.0), Some(10.0), Some(99.0));
        assert_eq!(kept(&[a.clone(), b.clone()]).0, vec![(0, 2)]);
        (a.paid_amount, b.paid_amount) = (None, None);
        assert_eq!(kept(&[a, b]).0, vec![(0, 2), (1, 2)]);
        // A file delivered three times: both later copies go.
        let rows = [line(2, 2, "A", 600.0), line(0, 2, "A", 600.0), line(1, 2, "A", 600.0)];
        assert_eq!(kept(&rows), (vec![(0, 2)], vec![0, 1, 1]));
    }
}
