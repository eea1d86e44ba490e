//! Synthetic payer-wide extracts (see `claims-audit generate`).

use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::{ArrayRef, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray};

use crate::error::{Error, Result};
use crate::model::Date;
use crate::report::parquet_io::ParquetOut;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GenFormat {
    Csv,
    Parquet,
}

pub struct GenOptions {
    pub lines: u64,
    pub cohort: u64,
    pub seed: u64,
    pub format: GenFormat,
    pub dense: bool,
    pub out: PathBuf,
    /// Where to write the cohort's pharmacy claims (Tuva `pharmacy_claim`).
    pub pharmacy: Option<PathBuf>,
}

/// Tuva columns the generator writes, in order.
pub const COLUMNS: [&str; 27] = [
    "claim_id",
    "claim_line_number",
    "claim_type",
    "person_id",
    "member_id",
    "payer",
    "plan",
    "claim_start_date",
    "claim_end_date",
    "claim_line_start_date",
    "claim_line_end_date",
    "place_of_service_code",
    "hcpcs_code",
    "hcpcs_modifier_1",
    "hcpcs_modifier_2",
    "service_unit_quantity",
    "ndc_code",
    "rendering_npi",
    "billing_npi",
    "diagnosis_code_1",
    "diagnosis_code_2",
    "diagnosis_code_3",
    "paid_amount",
    "allowed_amount",
    "charge_amount",
    "bill_type_code",
    "revenue_center_code",
];

/// Tuva `pharmacy_claim` columns of the pharmacy extract, in order.
pub const PHARMACY_COLUMNS: [&str; 14] = [
    "claim_id",
    "claim_line_number",
    "person_id",
    "member_id",
    "payer",
    "plan",
    "dispensing_date",
    "ndc_code",
    "quantity",
    "days_supply",
    "paid_amount",
    "allowed_amount",
    "dispensing_provider_npi",
    "prescribing_provider_npi",
];

/// splitmix64: small, fast, and the same on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        ((self.next() >> 32) * n) >> 32
    }
    fn chance(&mut self, per_thousand: u64) -> bool {
        self.below(1000) < per_thousand
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len() as u64) as usize]
    }
}

const BG_CODES: [(&str, f64, f64); 11] = [
    ("99213", 1.0, 92.0),
    ("99214", 1.0, 131.0),
    ("80053", 1.0, 11.0),
    ("85025", 1.0, 8.5),
    ("36415", 1.0, 3.0),
    ("97110", 2.0, 31.0),
    ("71046", 1.0, 28.0),
    ("93000", 1.0, 17.0),
    ("G0439", 1.0, 130.0),
    ("90686", 1.0, 22.0),
    ("96372", 1.0, 14.0),
];
/// Hospital outpatient lines (8% of background): code, units, price, revenue
/// code. Revenue-code-only lines have no HCPCS; 0250 ones are pharmacy.
const BG_INSTITUTIONAL: [(&str, f64, f64, &str); 8] = [
    ("", 1.0, 35.0, "0250"),
    ("", 1.0, 40.0, "0270"),
    ("", 2.0, 120.0, "0120"),
    ("", 1.0, 18.0, "0258"),
    ("80053", 1.0, 11.0, "0300"),
    ("85025", 1.0, 8.5, "0305"),
    ("99284", 1.0, 310.0, "0450"),
    ("71046", 1.0, 28.0, "0320"),
];
/// Types of bill of background institutional claims: hospital outpatient and inpatient.
const BG_BILL_TYPES: [&str; 3] = ["0131", "0111", "131"];
/// Office J-code injections: 1.5% of background lines, in scope as J-codes.
const BG_J: [(&str, f64, f64); 3] = [("J1885", 2.0, 1.1), ("J3301", 4.0, 1.6), ("J0696", 1.0, 0.9)];
const BG_DX: [&str; 10] = ["I10", "E11.9", "M54.50", "J45.909", "Z00.00", "E78.5", "F41.1", "K21.9", "N39.0", "R51.9"];
const PAYERS: [(&str, &str); 5] = [
    ("Aetna", "Aetna Choice POS II"),
    ("UnitedHealthcare", "UHC Choice Plus"),
    ("Medicare", "Medicare Part B"),
    ("Humana", "Humana Medicare Advantage PPO"),
    ("State Medicaid", "Medicaid FFS"),
];

/// One generated line before formatting.
#[derive(Clone, Copy)]
struct GLine {
    claim: u64,
    line: u32,
    person: u64,
    payer: usize,
    date: Date,
    end: Date,
    pos: &'static str,
    code: &'static str,
    modifier: &'static str,
    units: f64,
    ndc: &'static str,
    dx: [&'static str; 3],
    price: f64,
    quirk: u8,
    /// Type of bill of an institutional claim ("" = professional).
    bill_type: &'static str,
    revenue: &'static str,
}

/// One generated pharmacy claim line (an NCPDP dispense).
#[derive(Clone, Copy)]
struct PLine {
    claim: u64,
    person: u64,
    payer: usize,
    date: Date,
    ndc: &'static str,
    quantity: f64,
    price: f64,
}

/// Date texts by day number, in the three extract styles, for the
/// generated span; dates outside it are formatted on the fly.
struct Dates {
    base: i32,
    text: Vec<[String; 3]>,
}

impl Dates {
    fn new(from: Date, to: Date) -> Dates {
        let text = (from.0..=to.0).map(|d| Dates::format(Date(d))).collect();
        Dates { base: from.0, text }
    }

    fn format(d: Date) -> [String; 3] {
        let (y, m, dd) = d.ymd();
        [format!("{y:04}-{m:02}-{dd:02}"), format!("{y:04}{m:02}{dd:02}"), format!("{m:02}/{dd:02}/{y:04}")]
    }

    fn push(&self, out: &mut Vec<u8>, d: Date, style: usize) {
        match usize::try_from(d.0 - self.base).ok().and_then(|i| self.text.get(i)) {
            Some(t) => out.extend_from_slice(t[style].as_bytes()),
            None => out.extend_from_slice(Dates::format(d)[style].as_bytes()),
        }
    }
}

fn push_num(out: &mut Vec<u8>, mut v: u64, width: usize) {
    let mut buf = [b'0'; 20];
    let mut i = buf.len();
    while v > 0 || i == buf.len() {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    let digits = buf.len() - i;
    out.extend(std::iter::repeat_n(b'0', width.saturating_sub(digits)));
    out.extend_from_slice(&buf[i..]);
}

/// `P{person},M{person},{payer},`: the ids and payer of both extracts' rows.
fn push_person_payer(o: &mut Vec<u8>, person: u64, payer: &str) {
    o.push(b'P');
    push_num(o, person, 8);
    o.extend_from_slice(b",M");
    push_num(o, person, 8);
    o.push(b',');
    o.extend_from_slice(payer.as_bytes());
    o.push(b',');
}

/// Money as cents, so no float formatting on the hot path.
fn push_money(out: &mut Vec<u8>, v: f64) {
    let cents = (v * 100.0).round() as i64;
    if cents < 0 {
        out.push(b'-');
    }
    let c = cents.unsigned_abs();
    push_num(out, c / 100, 1);
    out.push(b'.');
    push_num(out, c % 100, 2);
}

fn push_units(out: &mut Vec<u8>, u: f64, three_decimals: bool) {
    if u < 0.0 {
        out.push(b'-');
    }
    let a = u.abs();
    if a.fract() == 0.0 {
        push_num(out, a as u64, 1);
        if three_decimals {
            out.extend_from_slice(b".000");
        }
    } else {
        out.extend_from_slice(format!("{a}").as_bytes());
    }
}

impl GLine {
    /// CSV text of the line. Quirks: 1 lower-case code with spaces, 2 other
    /// date forms, 3 POS "12.0", 4 units "600.000", 5 quoted plan with a
    /// comma, quotes and a newline.
    fn write(&self, o: &mut Vec<u8>, dates: &Dates) {
        let (payer, plan) = PAYERS[self.payer];
        let style = if self.quirk == 2 { 1 + (self.claim % 2) as usize } else { 0 };
        o.push(b'C');
        push_num(o, self.claim, 9);
        o.push(b',');
        push_num(o, self.line as u64, 1);
        o.extend_from_slice(if self.bill_type.is_empty() { b",professional," } else { b",institutional," });
        push_person_payer(o, self.person, payer);
        if self.quirk == 5 {
            o.push(b'"');
            o.extend_from_slice(plan.as_bytes());
            o.extend_from_slice(PLAN_QUIRK.as_bytes());
            o.push(b'"');
        } else {
            o.extend_from_slice(plan.as_bytes());
        }
        for x in [self.date, self.date, self.date, self.end] {
            o.push(b',');
            dates.push(o, x, style);
        }
        o.push(b',');
        o.extend_from_slice(if self.quirk == 3 && self.pos == "12" { b"12.0" } else { self.pos.as_bytes() });
        o.push(b',');
        if self.quirk == 1 {
            o.push(b' ');
            o.extend(self.code.bytes().map(|b| b.to_ascii_lowercase()));
            o.push(b' ');
        } else {
            o.extend_from_slice(self.code.as_bytes());
        }
        o.push(b',');
        o.extend_from_slice(self.modifier.as_bytes());
        o.extend_from_slice(b",,");
        push_units(o, self.units, self.quirk == 4);
        o.push(b',');
        o.extend_from_slice(self.ndc.as_bytes());
        o.extend_from_slice(b",1902837465,1447382910,");
        o.extend_from_slice(self.dx[0].as_bytes());
        o.push(b',');
        o.extend_from_slice(self.dx[1].as_bytes());
        o.push(b',');
        o.extend_from_slice(self.dx[2].as_bytes());
        o.push(b',');
        let paid = self.price * self.units;
        push_money(o, paid);
        o.push(b',');
        push_money(o, paid * 1.1);
        o.push(b',');
        push_money(o, paid * 1.6);
        o.push(b',');
        o.extend_from_slice(self.bill_type.as_bytes());
        o.push(b',');
        o.extend_from_slice(self.revenue.as_bytes());
        o.push(b'\n');
    }
}

impl PLine {
    fn write(&self, o: &mut Vec<u8>) {
        let (payer, plan) = PAYERS[self.payer];
        o.push(b'R');
        push_num(o, self.claim, 9);
        o.extend_from_slice(b",1,");
        push_person_payer(o, self.person, payer);
        o.extend_from_slice(plan.as_bytes());
        o.push(b',');
        o.extend_from_slice(self.date.to_string().as_bytes());
        o.push(b',');
        o.extend_from_slice(self.ndc.as_bytes());
        o.push(b',');
        push_units(o, self.quantity, false);
        o.extend_from_slice(if self.quantity < 0.0 { b",-1," } else { b",1," });
        let paid = self.price * self.quantity;
        push_money(o, paid);
        o.push(b',');
        push_money(o, paid * 1.05);
        o.extend_from_slice(b",1134567892,1902837465\n");
    }
}

const FY26: i32 = 20362; // 2025-10-01
/// Quirk 5 appends this to the plan (CSV-quoted: `""` for each quote).
const PLAN_QUIRK: &str = ", \"\"legacy\"\"\nrider";
const PLAN_QUIRK_VALUE: &str = ", \"legacy\"\nrider";

/// DX_CODE_INVALID plants, spellings as billed: a typo (unknown), a header
/// in lower case, a code deleted in FY2017 (ended), a FY2026 code (not yet
/// valid before 2025-10-01, a near miss from then), and valid codes in odd
/// spellings (near misses).
pub const PLANTED_DX: [&str; 6] = ["G3S", "e11", "H40.11X0", "e11.a", "e11.9", "m79. 604"];
/// Of those, the ones no release makes billable on the generator's dates
/// (2024-2026); `E11.A` only before 2025-10-01.
pub const PLANTED_DX_INVALID: [&str; 3] = ["G3S", "e11", "H40.11X0"];
/// Out-of-scope lines (no policy code) that carry an unknown code: a near
/// miss, as the rule reads policy-code lines only.
pub const PLANTED_DX_OUT_OF_SCOPE: &str = "Z79.9";

/// A cohort claim's planted diagnosis, by claim number (no draw from the
/// random stream, so the rest of the extract is what it was): the position
/// (second or third) and the code. About one claim in 41.
pub fn plant_dx(claim: u64) -> Option<(usize, &'static str)> {
    if claim % 41 != 7 {
        return None;
    }
    let k = (claim / 41) as usize;
    Some((1 + (k / PLANTED_DX.len()) % 2, PLANTED_DX[k % PLANTED_DX.len()]))
}

fn ms_dx(d: Date, r: &mut Rng) -> &'static str {
    const AFTER: [&str; 5] = ["G35.A", "G35.B1", "g35a", "G35.C1", "G35B0"];
    if d.0 < FY26 { "G35" } else { AFTER[r.below(AFTER.len() as u64) as usize] }
}

/// How a cohort person's infusions are billed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    /// Professional claims (837P) with a place of service.
    Professional,
    /// Institutional home health claims (UB-04, type of bill 034x), no POS.
    HomeHealth,
    /// The drug dispensed by a specialty pharmacy (NCPDP); per diem and
    /// nursing on professional claims.
    Pharmacy,
}

const OCREVUS_NDC_FORMS: [&str; 3] = ["50242-0150-01", "50242015001", "50242-150-01"];

/// Revenue code of an institutional line by its HCPCS code.
fn revenue_of(code: &str) -> &'static str {
    match code {
        "S9379" | "S9490" => "0260",
        "99601" | "99602" => "0551",
        _ => "0636",
    }
}

/// A person's ocrelizumab history with, now and then, a planted anomaly.
/// Anomalies 0-18 are the catalogue v1 cases; 19-22 the institutional and
/// pharmacy ones.
fn cohort_person(person: u64, r: &mut Rng, claim: &mut u64, start: Date, end: Date, out: &mut Vec<GLine>, rx: &mut Vec<PLine>) {
    let mut payer = r.below(PAYERS.len() as u64) as usize;
    let route = match r.below(100) {
        0..15 => Route::HomeHealth,
        15..30 => Route::Pharmacy,
        _ => Route::Professional,
    };
    if route == Route::Pharmacy && payer == 2 {
        // Medicare Part B pays the drug on the medical claim: a commercial plan.
        payer = 0;
    }
    let home = route != Route::Professional || r.chance(700);
    let mut day = start.add_days(r.below(300) as i32);
    let mut k = 0;
    while day <= end {
        let dose = if k < 2 { 300.0 } else { 600.0 };
        let anomaly = if r.chance(150) { r.below(23) } else { 99 };
        let mut dose_units = dose;
        if anomaly == 13 {
            dose_units = 450.0;
        }
        *claim += 1;
        let c = *claim;
        let dx1 = match anomaly {
            0 => "R51.9",
            1 if day.0 >= FY26 => "G35",
            2 if day.0 >= FY26 => "G35.C2",
            _ => ms_dx(day, r),
        };
        let medicare = payer == 2;
        let modifier = if medicare && anomaly != 7 { "JZ" } else { "" };
        let ndc = if anomaly == 6 { "50242-0140-01" } else { *r.pick(&OCREVUS_NDC_FORMS) };
        let bill_type = match route {
            Route::HomeHealth if anomaly == 19 => "0131",
            Route::HomeHealth => *r.pick(&["0341", "341"]),
            _ => "",
        };
        let pos = match (route, home) {
            (Route::HomeHealth, _) => "",
            (_, true) if anomaly == 8 => "11",
            (_, true) => "12",
            (_, false) => "11",
        };
        // (code, units, modifier, NDC, price, revenue code: "" = by code on institutional claims).
        let mut lines: Vec<(&'static str, f64, &'static str, &'static str, f64, &'static str)> = Vec::new();
        if route != Route::Pharmacy || anomaly == 20 {
            lines.push(("J2350", dose_units, modifier, ndc, 62.0, ""));
        }
        // Institutional claims bill the steroid under revenue code 0250 without
        // a HCPCS code about half the time.
        let uncoded_steroid = route == Route::HomeHealth && r.chance(500);
        if anomaly != 11 {
            if uncoded_steroid {
                lines.push(("", 1.0, "", "", 6.0, "0250"));
            } else {
                lines.push((*r.pick(&["J2930", "J2920", "J2919"]), 1.0, "", "", 6.0, ""));
            }
        }
        lines.push(("J1200", 1.0, "", "", 2.0, ""));
        if anomaly == 12 {
            lines.push(("J2351", 920.0, "", "", 48.0, ""));
        }
        if home {
            if !medicare || anomaly == 9 {
                lines.push(("S9379", 1.0, "", "", 150.0, ""));
            }
            if anomaly != 3 {
                lines.push(("99601", 1.0, "", "", 180.0, ""));
            }
            lines.push(("99602", if anomaly == 4 { 4.0 } else { 1.0 }, "", "", 90.0, ""));
            if anomaly == 10 {
                lines.push(("S9490", 1.0, "", "", 120.0, ""));
            }
        } else {
            lines.push(("96413", 1.0, "", "", 140.0, ""));
            lines.push(("96415", 2.0, "", "", 30.0, ""));
        }
        if anomaly == 5 {
            lines.push(("J1200", 1.0, "", "", 2.0, ""));
        }
        if route == Route::HomeHealth {
            lines.push(("", 1.0, "", "", 40.0, "0270")); // supplies
        }
        if route == Route::Pharmacy {
            let quantity = dose_units / 30.0;
            let date = day.add_days(if anomaly == 22 { -60 } else { -(1 + r.below(5) as i32) });
            let ndc = *r.pick(&OCREVUS_NDC_FORMS);
            rx.push(PLine { claim: c, person, payer, date, ndc, quantity, price: 1_860.0 });
            if anomaly == 21 {
                rx.push(PLine { claim: c + 1_000_000_000, person, payer, date, ndc, quantity: -quantity, price: 1_860.0 });
            }
        }
        let void = r.chance(20);
        for (n, (code, units, m, ndc, price, rev)) in lines.iter().enumerate() {
            let quirk = if r.chance(30) { 1 + r.below(5) as u8 } else { 0 };
            let revenue = if route != Route::HomeHealth || !rev.is_empty() { rev } else { revenue_of(code) };
            out.push(GLine {
                claim: c,
                line: n as u32 + 1,
                person,
                payer,
                date: day,
                end: day,
                pos,
                code,
                modifier: m,
                units: *units,
                ndc,
                dx: match plant_dx(c) {
                    Some((1, code)) => [dx1, code, ""],
                    Some((_, code)) => [dx1, "Z79.899", code],
                    None => [dx1, "Z79.899", ""],
                },
                price: *price,
                // Code quirks need a code.
                quirk: if code.is_empty() && quirk == 1 { 0 } else { quirk },
                bill_type,
                revenue,
            });
        }
        if void {
            // Void the whole claim and rebill it.
            let n = out.len();
            let first = n - lines.len();
            for i in first..n {
                let mut v = out[i];
                v.claim = c + 1_000_000_000;
                v.units = -v.units;
                out.push(v);
            }
            for i in first..n {
                let mut v = out[i];
                v.claim = c + 2_000_000_000;
                out.push(v);
            }
        }
        if anomaly == 14 && home {
            *claim += 1;
            let d2 = day.add_days(40);
            out.push(GLine {
                claim: *claim,
                line: 1,
                person,
                payer,
                date: d2,
                end: d2,
                pos,
                code: "S9379",
                modifier: "",
                units: 1.0,
                ndc: "",
                dx: [dx1, "", ""],
                price: 150.0,
                quirk: 0,
                bill_type,
                revenue: if bill_type.is_empty() { "" } else { "0260" },
            });
        }
        let gap = match (k, anomaly) {
            (0, 15) => 30,
            (0, 16) => 400,
            (0, _) => 14,
            (_, 17) => 100,
            (_, 18) => 250,
            _ => 168 + r.below(14) as i32 - 7,
        };
        day = day.add_days(gap);
        k += 1;
    }
}

pub fn generate(o: &GenOptions) -> Result<()> {
    let mut r = Rng(o.seed ^ 0x5EED_CAFE_F00D);
    let start = Date::from_ymd(2024, 1, 1).unwrap_or_default();
    let end = Date::from_ymd(2026, 6, 30).unwrap_or_default();
    let span = end.days_since(start) as u64;
    let mut claim = 0u64;
    // Anomalies date a line up to a few hundred days past the span.
    let dates = Dates::new(start.add_days(-31), end.add_days(600));
    let mut out = Output::new(o)?;
    let mut rx: Vec<PLine> = Vec::new();
    if o.dense {
        // Cohort histories only, streamed batch by batch.
        let (mut batch, mut written, mut person) = (Vec::with_capacity(BATCH + 64), 0u64, 0u64);
        while written < o.lines {
            cohort_person(person, &mut r, &mut claim, start, end, &mut batch, &mut rx);
            person += 1;
            let left = o.lines - written;
            if batch.len() as u64 >= left {
                batch.truncate(left as usize);
            }
            if batch.len() >= BATCH || batch.len() as u64 == left {
                out.write(&batch, &dates)?;
                written += batch.len() as u64;
                batch.clear();
            }
        }
        write_pharmacy(o, &rx)?;
        return out.finish();
    }
    // The cohort first, then spread evenly through the background.
    let mut cohort: Vec<GLine> = Vec::new();
    for person in 0..o.cohort {
        cohort_person(person, &mut r, &mut claim, start, end, &mut cohort, &mut rx);
    }
    cohort.truncate(o.lines as usize);
    let background = o.lines.saturating_sub(cohort.len() as u64);
    let every = if cohort.is_empty() { u64::MAX } else { (background / cohort.len() as u64).max(1) };
    let bg_people = (o.lines / 6).max(1);
    let mut next_cohort = 0usize;
    let mut bg_claim = 10_000_000_000u64;
    let mut batch: Vec<GLine> = Vec::with_capacity(BATCH);
    #[allow(clippy::explicit_counter_loop)]
    for i in 0..background {
        if every != u64::MAX && i % every == 0 && next_cohort < cohort.len() {
            batch.push(cohort[next_cohort]);
            next_cohort += 1;
        }
        // Institutional outpatient lines, many with a revenue code only.
        let institutional = r.chance(80);
        let (code, units, price, revenue) = if institutional {
            *r.pick(&BG_INSTITUTIONAL)
        } else if r.chance(15) {
            let (c, u, p) = *r.pick(&BG_J);
            (c, u, p, "")
        } else {
            let (c, u, p) = *r.pick(&BG_CODES);
            (c, u, p, "")
        };
        let d = start.add_days(r.below(span) as i32);
        bg_claim += 1;
        batch.push(GLine {
            claim: bg_claim,
            line: 1,
            person: 1_000_000 + r.below(bg_people),
            payer: r.below(PAYERS.len() as u64) as usize,
            date: d,
            end: d,
            pos: if institutional { "" } else { "11" },
            code,
            modifier: "",
            units,
            ndc: "",
            dx: [*r.pick(&BG_DX), *r.pick(&BG_DX), if bg_claim.is_multiple_of(97) { PLANTED_DX_OUT_OF_SCOPE } else { "" }],
            price,
            quirk: if r.chance(5) { 5 } else { 0 },
            bill_type: if institutional { BG_BILL_TYPES[r.below(BG_BILL_TYPES.len() as u64) as usize] } else { "" },
            revenue,
        });
        if batch.len() >= BATCH {
            out.write(&batch, &dates)?;
            batch.clear();
        }
    }
    batch.extend_from_slice(&cohort[next_cohort..]);
    out.write(&batch, &dates)?;
    write_pharmacy(o, &rx)?;
    out.finish()
}

/// Writes the cohort's pharmacy claims when `--pharmacy` names a file, in
/// the format of the medical extract.
fn write_pharmacy(o: &GenOptions, rx: &[PLine]) -> Result<()> {
    let Some(path) = &o.pharmacy else { return Ok(()) };
    let err = |e: String| Error::output(path, e);
    if o.format == GenFormat::Csv {
        let mut text = format!("{}\n", PHARMACY_COLUMNS.join(",")).into_bytes();
        for l in rx {
            l.write(&mut text);
        }
        return std::fs::write(path, text).map_err(|e| err(format!("write failed: {e}")));
    }
    let cents = |v: f64| (v * 100.0).round() / 100.0;
    let ids = |f: &dyn Fn(&PLine) -> String| strs(rx.iter().map(f));
    let nums = |f: &dyn Fn(&PLine) -> f64| -> ArrayRef { Arc::new(Float64Array::from_iter_values(rx.iter().map(f))) };
    let batch = RecordBatch::try_from_iter([
        ("claim_id", ids(&|l| format!("R{:09}", l.claim))),
        ("claim_line_number", Arc::new(Int64Array::from(vec![1i64; rx.len()])) as ArrayRef),
        ("person_id", ids(&|l| format!("P{:08}", l.person))),
        ("member_id", ids(&|l| format!("M{:08}", l.person))),
        ("payer", strs(rx.iter().map(|l| PAYERS[l.payer].0))),
        ("plan", strs(rx.iter().map(|l| PAYERS[l.payer].1))),
        ("dispensing_date", Arc::new(Date32Array::from_iter_values(rx.iter().map(|l| l.date.0)))),
        ("ndc_code", strs(rx.iter().map(|l| l.ndc))),
        ("quantity", nums(&|l| l.quantity)),
        ("days_supply", Arc::new(Int64Array::from_iter_values(rx.iter().map(|l| if l.quantity < 0.0 { -1i64 } else { 1 })))),
        ("paid_amount", nums(&|l| cents(l.price * l.quantity))),
        ("allowed_amount", nums(&|l| cents(l.price * l.quantity * 1.05))),
        ("dispensing_provider_npi", strs(rx.iter().map(|_| "1134567892"))),
        ("prescribing_provider_npi", strs(rx.iter().map(|_| "1902837465"))),
    ])
    .map_err(|e| err(e.to_string()))?;
    write_parquet(path, &batch)
}

/// A column of strings.
fn strs<S: AsRef<str>>(v: impl Iterator<Item = S>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(v))
}

/// Writes one batch as a Parquet file.
fn write_parquet(path: &std::path::Path, batch: &RecordBatch) -> Result<()> {
    let f = std::fs::File::create(path).map_err(|e| Error::output(path, format!("cannot create: {e}")))?;
    ParquetOut::write_one(f, path, batch)
}

/// Lines generated before they are formatted (in parallel) and written.
const BATCH: usize = 1 << 18;

enum Output {
    /// `bufs`: text buffers reused batch to batch (fresh ones would page-fault).
    Csv {
        file: std::fs::File,
        path: PathBuf,
        bufs: Vec<Vec<u8>>,
    },
    Parquet(Box<ParquetSink>),
}

impl Output {
    fn new(o: &GenOptions) -> Result<Output> {
        if o.format == GenFormat::Parquet {
            return Ok(Output::Parquet(Box::new(ParquetSink::new(&o.out))));
        }
        let mut file = std::fs::File::create(&o.out).map_err(|e| Error::output(&o.out, format!("cannot create: {e}")))?;
        let header = format!("{}\n", COLUMNS.join(","));
        std::io::Write::write_all(&mut file, header.as_bytes()).map_err(|e| Error::output(&o.out, format!("write failed: {e}")))?;
        Ok(Output::Csv { file, path: o.out.clone(), bufs: Vec::new() })
    }

    /// Writes lines in order; CSV text is formatted in parallel chunks.
    fn write(&mut self, lines: &[GLine], dates: &Dates) -> Result<()> {
        use rayon::prelude::*;
        match self {
            Output::Csv { file, path, bufs } => {
                const CHUNK: usize = 8192;
                bufs.resize_with(lines.len().div_ceil(CHUNK).max(bufs.len()), Vec::new);
                lines.par_chunks(CHUNK).zip(bufs.par_iter_mut()).for_each(|(c, o)| {
                    o.clear();
                    for l in c {
                        l.write(o, dates);
                    }
                });
                for b in bufs.iter().take(lines.len().div_ceil(CHUNK)) {
                    std::io::Write::write_all(file, b).map_err(|e| Error::output(&*path, format!("write failed: {e}")))?;
                }
                Ok(())
            }
            Output::Parquet(p) => p.push(lines),
        }
    }

    fn finish(self) -> Result<()> {
        match self {
            Output::Csv { .. } => Ok(()),
            Output::Parquet(p) => p.finish(),
        }
    }
}

/// Typed column buffers for Parquet output, written as a row group every 256k
/// lines: dates DATE, units and amounts DOUBLE, line numbers INT64, the rest
/// strings with the same text quirks as the CSV (not those of dates or units,
/// which typed columns cannot carry).
struct ParquetSink {
    /// One buffer per column of `COLUMNS`, in that order.
    cols: Vec<Buf>,
    rows: usize,
    writer: Option<ParquetOut>,
    path: std::path::PathBuf,
}

/// One Parquet cell of a generated line.
enum Cell {
    Id(String),
    Text(Option<&'static str>),
    Int(i64),
    Date(Date),
    Num(f64),
}

enum Buf {
    Id(Vec<String>),
    Text(Vec<Option<&'static str>>),
    Int(Vec<i64>),
    Date(Vec<i32>),
    Num(Vec<f64>),
}

impl Buf {
    fn for_cell(c: &Cell) -> Buf {
        match c {
            Cell::Id(_) => Buf::Id(Vec::new()),
            Cell::Text(_) => Buf::Text(Vec::new()),
            Cell::Int(_) => Buf::Int(Vec::new()),
            Cell::Date(_) => Buf::Date(Vec::new()),
            Cell::Num(_) => Buf::Num(Vec::new()),
        }
    }

    fn push(&mut self, c: Cell) {
        match (self, c) {
            (Buf::Id(v), Cell::Id(x)) => v.push(x),
            (Buf::Text(v), Cell::Text(x)) => v.push(x),
            (Buf::Int(v), Cell::Int(x)) => v.push(x),
            (Buf::Date(v), Cell::Date(x)) => v.push(x.0),
            (Buf::Num(v), Cell::Num(x)) => v.push(x),
            // `GLine::cells` gives every column the same kind on every line.
            _ => debug_assert!(false, "cell kind changed between lines"),
        }
    }

    fn take(&mut self) -> ArrayRef {
        match self {
            Buf::Id(v) => strs(std::mem::take(v).into_iter()),
            Buf::Text(v) => Arc::new(StringArray::from(std::mem::take(v))),
            Buf::Int(v) => Arc::new(Int64Array::from(std::mem::take(v))),
            Buf::Date(v) => Arc::new(Date32Array::from(std::mem::take(v))),
            Buf::Num(v) => Arc::new(Float64Array::from(std::mem::take(v))),
        }
    }
}

/// Plans with the quirk-5 suffix, interned once.
fn quirk_plan(payer: usize) -> &'static str {
    static PLANS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    let plans = PLANS.get_or_init(|| PAYERS.iter().map(|(_, p)| &*Box::leak(format!("{p}{PLAN_QUIRK_VALUE}").into_boxed_str())).collect());
    plans.get(payer).copied().unwrap_or("")
}

/// Codes with quirk 1 (lower case, padded), interned once per code.
fn quirk_code(code: &'static str) -> &'static str {
    static CODES: std::sync::Mutex<Vec<(&'static str, &'static str)>> = std::sync::Mutex::new(Vec::new());
    let Ok(mut v) = CODES.lock() else { return code };
    if let Some((_, q)) = v.iter().find(|(c, _)| *c == code) {
        return q;
    }
    let q: &'static str = Box::leak(format!(" {} ", code.to_ascii_lowercase()).into_boxed_str());
    v.push((code, q));
    q
}

impl GLine {
    /// The line's Parquet cells, in `COLUMNS` order: the values `write`
    /// gives as CSV text.
    fn cells(&self) -> [Cell; COLUMNS.len()] {
        let (payer, plan) = PAYERS[self.payer];
        let text = |s: &'static str| Cell::Text((!s.is_empty()).then_some(s));
        // Same cents as the CSV text.
        let paid = self.price * self.units;
        let cents = |v: f64| Cell::Num((v * 100.0).round() / 100.0);
        [
            Cell::Id(format!("C{:09}", self.claim)),
            Cell::Int(self.line as i64),
            text(if self.bill_type.is_empty() { "professional" } else { "institutional" }),
            Cell::Id(format!("P{:08}", self.person)),
            Cell::Id(format!("M{:08}", self.person)),
            text(payer),
            text(if self.quirk == 5 { quirk_plan(self.payer) } else { plan }),
            Cell::Date(self.date),
            Cell::Date(self.date),
            Cell::Date(self.date),
            Cell::Date(self.end),
            text(if self.quirk == 3 && self.pos == "12" { "12.0" } else { self.pos }),
            text(if self.quirk == 1 { quirk_code(self.code) } else { self.code }),
            text(self.modifier),
            text(""),
            Cell::Num(self.units),
            text(self.ndc),
            text("1902837465"),
            text("1447382910"),
            text(self.dx[0]),
            text(self.dx[1]),
            text(self.dx[2]),
            cents(paid),
            cents(paid * 1.1),
            cents(paid * 1.6),
            text(self.bill_type),
            text(self.revenue),
        ]
    }
}

impl ParquetSink {
    fn new(path: &std::path::Path) -> ParquetSink {
        ParquetSink { cols: Vec::new(), rows: 0, writer: None, path: path.to_path_buf() }
    }

    fn push(&mut self, lines: &[GLine]) -> Result<()> {
        for l in lines {
            let cells = l.cells();
            if self.cols.is_empty() {
                self.cols = cells.iter().map(Buf::for_cell).collect();
            }
            for (b, c) in self.cols.iter_mut().zip(cells) {
                b.push(c);
            }
            self.rows += 1;
            if self.rows >= 1 << 18 {
                self.seal()?;
            }
        }
        Ok(())
    }

    /// Writes the buffered rows as one row group, columns in `COLUMNS` order.
    fn seal(&mut self) -> Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let batch = RecordBatch::try_from_iter(COLUMNS.iter().zip(self.cols.iter_mut()).map(|(name, b)| (*name, b.take())))
            .map_err(|e| Error::output(&self.path, e.to_string()))?;
        self.rows = 0;
        let w = match self.writer.take() {
            Some(w) => w,
            None => {
                let f = std::fs::File::create(&self.path).map_err(|e| Error::output(&self.path, format!("cannot create: {e}")))?;
                ParquetOut::new(f, &self.path, batch.schema())?
            }
        };
        self.writer.insert(w).write(&batch)
    }

    fn finish(mut self) -> Result<()> {
        self.seal()?;
        match self.writer.take() {
            Some(w) => w.finish(),
            None => Ok(()),
        }
    }
}

/// Copies a CSV extract to Parquet with real types: columns named `*_date`
/// become DATE, units and amounts DOUBLE, when every value parses; anything
/// else stays a string. Used to make the Parquet twin of sample_data.
pub fn csv_to_parquet(input: &std::path::Path, output: &std::path::Path) -> Result<()> {
    let cerr = |e: csv::Error| Error::input(input, e.to_string());
    let mut rd = csv::Reader::from_path(input).map_err(cerr)?;
    let header: Vec<String> = rd.headers().map_err(cerr)?.iter().map(str::to_string).collect();
    let mut cells: Vec<Vec<String>> = vec![Vec::new(); header.len()];
    for rec in rd.records() {
        let rec = rec.map_err(cerr)?;
        for (k, c) in cells.iter_mut().enumerate() {
            c.push(rec.get(k).unwrap_or("").to_string());
        }
    }
    let mut cols: Vec<(String, ArrayRef)> = Vec::new();
    for (name, c) in header.into_iter().zip(&cells) {
        let vals: Vec<Option<&str>> = c.iter().map(|v| Some(v.as_str()).filter(|x| !x.trim().is_empty())).collect();
        let lname = name.to_ascii_lowercase();
        if lname.ends_with("_date") {
            let parsed: Vec<Option<i32>> = vals.iter().map(|v| v.and_then(crate::model::Date::parse).map(|d| d.0)).collect();
            if parsed.iter().zip(&vals).all(|(p, v)| p.is_some() == v.is_some()) {
                cols.push((name, Arc::new(Date32Array::from(parsed))));
                continue;
            }
        }
        if ["service_unit_quantity", "quantity", "days_supply"].contains(&lname.as_str()) || lname.ends_with("_amount") {
            let parsed: Vec<Option<f64>> = vals.iter().map(|v| v.and_then(crate::model::codes::parse_number)).collect();
            if parsed.iter().zip(&vals).all(|(p, v)| p.is_some() == v.is_some()) {
                cols.push((name, Arc::new(Float64Array::from(parsed))));
                continue;
            }
        }
        cols.push((name, Arc::new(StringArray::from(vals))));
    }
    let batch = RecordBatch::try_from_iter(cols).map_err(|e| Error::input(input, e.to_string()))?;
    write_parquet(output, &batch)
}
