//! Builders for rule tests: a line with sensible defaults, changed field by field.

use crate::episodes::{Patient, PharmacySide, build_patient, net_reversals};
use crate::model::codes::normalize_dx;
use crate::model::{Codes, Date, Dispense, Line, Presence, Text};
use crate::policy::Policy;
use crate::rules::{Ctx, Finding, RuleOutput, eval_of, rule_index};

pub fn d(s: &str) -> Date {
    Date::parse(s).expect("test date")
}

pub fn line(date: &str, code: &str, units: f64) -> Line {
    Line {
        person_id: "P1".into(),
        claim_id: format!("C-{date}-{code}").into(),
        claim_line_number: 1,
        service_date: d(date),
        end_date: None,
        hcpcs: code.into(),
        units,
        // A valid MS diagnosis for the date: G35 before FY2026, G35.A from it.
        dx: Codes::from_codes([if d(date) < d("2025-10-01") { "G35" } else { "G35A" }]),
        modifiers: Codes::from_codes(["JZ"]),
        pos: Some("12".into()),
        bill_type: None,
        ndc: if code == "J2350" { Some("50242015001".into()) } else { None },
        program: Some("commercial".into()),
        rendering_npi: None,
        billing_npi: None,
        paid_amount: Some(100.0),
        allowed_amount: None,
        charge_amount: None,
        presence: Presence { payer: true, pos: true, modifiers: true, ndc: true, bill_type: false },
        file: 0,
        source_line: 2,
        raw: (units < 0.0).then(Box::default),
    }
}

pub trait LineExt {
    fn dx(self, codes: &[&str]) -> Line;
    fn claim(self, id: &str, n: i64) -> Line;
    fn program(self, p: Option<&str>) -> Line;
    fn mods(self, m: &[&str]) -> Line;
    fn pos(self, p: Option<&str>) -> Line;
    fn ndc(self, n: Option<&str>) -> Line;
    fn end(self, date: &str) -> Line;
    fn bill_type(self, b: &str) -> Line;
}

impl LineExt for Line {
    fn dx(mut self, codes: &[&str]) -> Line {
        let n: Vec<String> = codes.iter().map(|c| normalize_dx(c)).collect();
        self.dx = Codes::from_codes(n.iter().map(String::as_str));
        self
    }
    fn claim(mut self, id: &str, n: i64) -> Line {
        self.claim_id = id.into();
        self.claim_line_number = n;
        self
    }
    fn program(mut self, p: Option<&str>) -> Line {
        self.program = p.map(Text::from);
        self.presence.payer = p.is_some();
        self
    }
    fn mods(mut self, m: &[&str]) -> Line {
        let mut m = m.to_vec();
        m.sort();
        self.modifiers = Codes::from_codes(m);
        self
    }
    fn pos(mut self, p: Option<&str>) -> Line {
        self.pos = p.map(Text::from);
        self
    }
    fn ndc(mut self, n: Option<&str>) -> Line {
        self.ndc = n.map(Text::from);
        self
    }
    fn end(mut self, date: &str) -> Line {
        self.end_date = Some(d(date));
        self
    }
    fn bill_type(mut self, b: &str) -> Line {
        self.bill_type = crate::model::codes::normalize_bill_type(b);
        self.presence.bill_type = true;
        self
    }
}

/// An Ocrevus IV dispense of `quantity` mL (30 mg/mL) on `date`.
pub fn dispense(date: &str, quantity: f64) -> Dispense {
    Dispense {
        person_id: "P1".into(),
        claim_id: format!("RX-{date}").into(),
        claim_line_number: 1,
        date: d(date),
        ndc: "50242015001".into(),
        quantity,
        days_supply: Some(1.0),
        paid_amount: Some(150.0 * quantity.abs()),
        allowed_amount: None,
        program: Some("commercial".into()),
        dispensing_npi: None,
        prescribing_npi: None,
        file: 1,
        source_line: 2,
        raw: (quantity < 0.0).then(Box::default),
    }
}

/// A full on-label IV infusion day: drug, steroid, antihistamine, per diem, nursing.
pub fn clean_day(date: &str, dose: f64) -> Vec<Line> {
    vec![
        line(date, "J2350", dose),
        line(date, "J2930", 1.0),
        line(date, "J1200", 1.0),
        line(date, "S9379", 1.0),
        line(date, "99601", 1.0),
        line(date, "99602", 2.0),
    ]
}

#[derive(Default)]
pub struct Run {
    pub from: Option<Date>,
    pub to: Option<Date>,
    pub horizon: Option<Date>,
    /// Pharmacy rows; a run with any (or with `pharmacy_input`) read a pharmacy extract.
    pub dispenses: Vec<Dispense>,
    pub pharmacy_input: bool,
    /// Days with an uncoded pharmacy revenue line.
    pub uncoded_drug_days: Vec<Date>,
}

/// Evaluates one rule on one patient's lines; returns its findings.
pub fn fire(rule: &str, lines: Vec<Line>) -> Vec<Finding> {
    fire_with(rule, lines, Run::default())
}

pub fn fire_with(rule: &str, lines: Vec<Line>, run: Run) -> Vec<Finding> {
    eval_with(rule, lines, run).findings
}

/// Evaluates one rule; returns its whole output (findings and counts).
pub fn eval_with(rule: &str, lines: Vec<Line>, run: Run) -> RuleOutput {
    with_patient(lines, run, |p, ctx| eval_of(rule_index(rule).expect("rule id"))(p, ctx))
}

/// Builds the patient (as the pipeline does) and hands it to `f`.
pub fn with_patient<T>(lines: Vec<Line>, run: Run, f: impl FnOnce(&Patient, &Ctx) -> T) -> T {
    let policy = Policy::default_policy().expect("policy");
    let horizon = run
        .horizon
        .or(run.to)
        .or_else(|| lines.iter().map(|l| l.service_date).chain(run.dispenses.iter().map(|x| x.date)).max())
        .unwrap_or_default();
    let active = net_reversals(lines.iter().collect()).active;
    let rx = net_reversals(run.dispenses.iter().collect()).active;
    let side = PharmacySide { dispenses: rx, uncoded_drug_days: run.uncoded_drug_days.clone() };
    let p = build_patient("P1".into(), active, side, &policy);
    let pharmacy_input = run.pharmacy_input || !run.dispenses.is_empty();
    let ctx = Ctx { policy: &policy, from: run.from, to: run.to, horizon, pharmacy_input };
    f(&p, &ctx)
}
