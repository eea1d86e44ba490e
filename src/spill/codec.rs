//! The spill files' record format: kept lines, dispenses and uncoded drug
//! days (and, through the public helpers, result rows) as compact binary records (varint lengths, little-endian
//! numbers). Private to one run, so no versioning; every read is checked, so
//! a damaged file is an error, never a panic or a wrong value.

use crate::model::{Codes, Date, Dispense, Line, Presence, Text, UncodedDrugDay};

const LINE: u8 = 1;
const DISPENSE: u8 = 2;
const UNCODED: u8 = 3;

/// The rows of one partition, as read back.
#[derive(Debug, Default)]
pub struct Rows {
    pub lines: Vec<Line>,
    pub dispenses: Vec<Dispense>,
    pub uncoded: Vec<UncodedDrugDay>,
}

pub fn varint(b: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        b.push(v as u8 | 0x80);
        v >>= 7;
    }
    b.push(v as u8);
}

pub fn text(b: &mut Vec<u8>, s: &str) {
    varint(b, s.len() as u64);
    b.extend_from_slice(s.as_bytes());
}

/// `None` as 0, `Some(s)` as its length + 1.
pub fn opt_text(b: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => b.push(0),
        Some(s) => {
            varint(b, s.len() as u64 + 1);
            b.extend_from_slice(s.as_bytes());
        }
    }
}

pub fn f64_(b: &mut Vec<u8>, v: f64) {
    b.extend_from_slice(&v.to_le_bytes());
}

pub fn opt_f64(b: &mut Vec<u8>, v: Option<f64>) {
    match v {
        None => b.push(0),
        Some(v) => {
            b.push(1);
            f64_(b, v);
        }
    }
}

pub fn date(b: &mut Vec<u8>, d: Date) {
    b.extend_from_slice(&d.0.to_le_bytes());
}

pub fn opt_date(b: &mut Vec<u8>, d: Option<Date>) {
    match d {
        None => b.push(0),
        Some(d) => {
            b.push(1);
            date(b, d);
        }
    }
}

fn presence_bits(p: Presence) -> u8 {
    u8::from(p.payer) | u8::from(p.pos) << 1 | u8::from(p.modifiers) << 2 | u8::from(p.ndc) << 3 | u8::from(p.bill_type) << 4
}

/// What lines and dispenses both start with: person, claim and line number.
fn put_claim(b: &mut Vec<u8>, person: &str, claim: &str, line: i64) {
    text(b, person);
    text(b, claim);
    b.extend_from_slice(&line.to_le_bytes());
}

/// What lines and dispenses both end with: where the row was read, and its
/// raw text when kept.
fn put_origin(b: &mut Vec<u8>, file: u32, source_line: u64, raw: Option<&str>) {
    varint(b, u64::from(file));
    varint(b, source_line);
    opt_text(b, raw);
}

pub fn put_line(b: &mut Vec<u8>, l: &Line) {
    b.push(LINE);
    put_claim(b, &l.person_id, &l.claim_id, l.claim_line_number);
    date(b, l.service_date);
    opt_date(b, l.end_date);
    text(b, &l.hcpcs);
    f64_(b, l.units);
    text(b, l.dx.joined());
    text(b, l.modifiers.joined());
    for t in [&l.pos, &l.bill_type, &l.ndc, &l.program, &l.rendering_npi, &l.billing_npi] {
        opt_text(b, t.as_deref());
    }
    for v in [l.paid_amount, l.allowed_amount, l.charge_amount] {
        opt_f64(b, v);
    }
    b.push(presence_bits(l.presence));
    put_origin(b, l.file, l.source_line, l.raw.as_deref());
}

pub fn put_dispense(b: &mut Vec<u8>, d: &Dispense) {
    b.push(DISPENSE);
    put_claim(b, &d.person_id, &d.claim_id, d.claim_line_number);
    date(b, d.date);
    text(b, &d.ndc);
    f64_(b, d.quantity);
    for v in [d.days_supply, d.paid_amount, d.allowed_amount] {
        opt_f64(b, v);
    }
    for t in [&d.program, &d.dispensing_npi, &d.prescribing_npi] {
        opt_text(b, t.as_deref());
    }
    put_origin(b, d.file, d.source_line, d.raw.as_deref());
}

pub fn put_uncoded(b: &mut Vec<u8>, u: &UncodedDrugDay) {
    b.push(UNCODED);
    text(b, &u.person_id);
    date(b, u.date);
}

/// A damaged record: where, in bytes.
#[derive(Debug)]
pub struct Damaged(pub usize);

/// Checked reads over one buffer of records.
pub struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub fn new(b: &'a [u8]) -> Reader<'a> {
        Reader { b, at: 0 }
    }

    /// Whether every byte was read.
    pub fn done(&self) -> bool {
        self.at == self.b.len()
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], Damaged> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len()).ok_or(Damaged(self.at))?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Damaged> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(N)?);
        Ok(a)
    }

    pub fn u8(&mut self) -> Result<u8, Damaged> {
        Ok(self.bytes(1)?[0])
    }

    pub fn varint(&mut self) -> Result<u64, Damaged> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(Damaged(self.at))
    }

    pub fn str_of(&mut self, n: u64) -> Result<&'a str, Damaged> {
        let at = self.at;
        let n = usize::try_from(n).map_err(|_| Damaged(at))?;
        std::str::from_utf8(self.bytes(n)?).map_err(|_| Damaged(at))
    }

    /// A text written by `text`, borrowed.
    pub fn str(&mut self) -> Result<&'a str, Damaged> {
        let n = self.varint()?;
        self.str_of(n)
    }

    pub fn text(&mut self) -> Result<Text, Damaged> {
        Ok(Text::new(self.str()?))
    }

    pub fn opt_str(&mut self) -> Result<Option<&'a str>, Damaged> {
        match self.varint()? {
            0 => Ok(None),
            n => self.str_of(n - 1).map(Some),
        }
    }

    pub fn opt_text(&mut self) -> Result<Option<Text>, Damaged> {
        Ok(self.opt_str()?.map(Text::new))
    }

    pub fn f64(&mut self) -> Result<f64, Damaged> {
        Ok(f64::from_le_bytes(self.array()?))
    }

    pub fn opt_f64(&mut self) -> Result<Option<f64>, Damaged> {
        match self.u8()? {
            0 => Ok(None),
            _ => self.f64().map(Some),
        }
    }

    pub fn date(&mut self) -> Result<Date, Damaged> {
        Ok(Date(i32::from_le_bytes(self.array()?)))
    }

    pub fn opt_date(&mut self) -> Result<Option<Date>, Damaged> {
        match self.u8()? {
            0 => Ok(None),
            _ => self.date().map(Some),
        }
    }

    pub fn i64(&mut self) -> Result<i64, Damaged> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    pub fn u32(&mut self) -> Result<u32, Damaged> {
        let at = self.at;
        u32::try_from(self.varint()?).map_err(|_| Damaged(at))
    }

    /// `put_claim`'s fields.
    fn claim(&mut self) -> Result<(Text, Text, i64), Damaged> {
        Ok((self.text()?, self.text()?, self.i64()?))
    }

    /// `put_origin`'s fields.
    fn origin(&mut self) -> Result<(u32, u64, Option<Box<str>>), Damaged> {
        Ok((self.u32()?, self.varint()?, self.opt_str()?.map(Box::from)))
    }

    fn line(&mut self) -> Result<Line, Damaged> {
        let (person_id, claim_id, claim_line_number) = self.claim()?;
        let service_date = self.date()?;
        let end_date = self.opt_date()?;
        let hcpcs = self.text()?;
        let units = self.f64()?;
        let dx = Codes::from_joined(&self.text()?);
        let modifiers = Codes::from_joined(&self.text()?);
        let [pos, bill_type, ndc, program, rendering_npi, billing_npi] =
            [self.opt_text()?, self.opt_text()?, self.opt_text()?, self.opt_text()?, self.opt_text()?, self.opt_text()?];
        let [paid_amount, allowed_amount, charge_amount] = [self.opt_f64()?, self.opt_f64()?, self.opt_f64()?];
        let bits = self.u8()?;
        let presence =
            Presence { payer: bits & 1 != 0, pos: bits & 2 != 0, modifiers: bits & 4 != 0, ndc: bits & 8 != 0, bill_type: bits & 16 != 0 };
        let (file, source_line, raw) = self.origin()?;
        Ok(Line {
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
            file,
            source_line,
            raw,
        })
    }

    fn dispense(&mut self) -> Result<Dispense, Damaged> {
        let (person_id, claim_id, claim_line_number) = self.claim()?;
        let date = self.date()?;
        let ndc = self.text()?;
        let quantity = self.f64()?;
        let [days_supply, paid_amount, allowed_amount] = [self.opt_f64()?, self.opt_f64()?, self.opt_f64()?];
        let [program, dispensing_npi, prescribing_npi] = [self.opt_text()?, self.opt_text()?, self.opt_text()?];
        let (file, source_line, raw) = self.origin()?;
        Ok(Dispense {
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
            file,
            source_line,
            raw,
        })
    }
}

/// Every record of a partition file's bytes, in the order written.
pub fn read_rows(b: &[u8], into: &mut Rows) -> Result<(), Damaged> {
    let mut r = Reader { b, at: 0 };
    while r.at < b.len() {
        let at = r.at;
        match r.u8()? {
            LINE => into.lines.push(r.line()?),
            DISPENSE => into.dispenses.push(r.dispense()?),
            UNCODED => {
                let person_id = r.text()?;
                let date = r.date()?;
                into.uncoded.push(UncodedDrugDay { person_id, date });
            }
            _ => return Err(Damaged(at)),
        }
    }
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A line with every field set (the spill tests' line too).
    pub(in crate::spill) fn line(person: &str) -> Line {
        Line {
            person_id: Text::new(person),
            claim_id: Text::new("C-a-claim-id-longer-than-twenty-four-bytes"),
            claim_line_number: -3,
            service_date: Date(20_000),
            end_date: Some(Date(20_010)),
            hcpcs: Text::new("J2350"),
            units: 300.5,
            dx: Codes::from_codes(["G35A", "R519"]),
            modifiers: Codes::from_codes(["JW", "KX"]),
            pos: Some(Text::new("12")),
            bill_type: None,
            ndc: Some(Text::new("50242015001")),
            program: Some(Text::new("medicare_advantage")),
            rendering_npi: None,
            billing_npi: Some(Text::new("1234567893")),
            paid_amount: Some(-12.25),
            allowed_amount: None,
            charge_amount: Some(0.0),
            presence: Presence { payer: true, pos: true, modifiers: false, ndc: true, bill_type: false },
            file: 7,
            source_line: 1 << 40,
            raw: Some("a,raw,row,é".into()),
        }
    }

    fn dispense() -> Dispense {
        Dispense {
            person_id: Text::new("P1"),
            claim_id: Text::new("RX1"),
            claim_line_number: 1,
            date: Date(-5),
            ndc: Text::new("50242015001"),
            quantity: -10.0,
            days_supply: Some(1.0),
            paid_amount: None,
            allowed_amount: Some(99.0),
            program: None,
            dispensing_npi: Some(Text::new("1")),
            prescribing_npi: None,
            file: 0,
            source_line: 2,
            raw: None,
        }
    }

    #[test]
    fn every_field_survives_the_round_trip() {
        let mut b = Vec::new();
        let (l, d) = (line("P1"), dispense());
        let mut bare = line("");
        bare.raw = None;
        bare.modifiers = Codes::default();
        bare.dx = Codes::default();
        let u = UncodedDrugDay { person_id: Text::new("P2"), date: Date(3) };
        put_line(&mut b, &l);
        put_dispense(&mut b, &d);
        put_uncoded(&mut b, &u);
        put_line(&mut b, &bare);
        let mut rows = Rows::default();
        read_rows(&b, &mut rows).expect("round trip");
        assert_eq!(rows.lines, [l, bare]);
        assert_eq!(rows.dispenses, [d]);
        assert_eq!(rows.uncoded, [u]);
    }

    #[test]
    fn a_cut_or_damaged_file_is_an_error() {
        let mut b = Vec::new();
        put_line(&mut b, &line("P1"));
        for cut in [1, 5, b.len() - 1] {
            assert!(read_rows(&b[..cut], &mut Rows::default()).is_err(), "cut at {cut}");
        }
        b[0] = 9;
        assert!(read_rows(&b, &mut Rows::default()).is_err());
    }
}
