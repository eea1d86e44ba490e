//! Builders for rule tests: a line with sensible defaults, changed field by field.

use crate::columns::Presence;
use crate::date::Date;
use crate::episodes::{build_patient, net_reversals};
use crate::normalize::{Line, normalize_dx};
use crate::policy::Policy;
use crate::rules::{Ctx, Finding, RULES};
use crate::text::{Codes, Text};

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
        modifiers: vec!["JZ".into()],
        pos: Some("12".into()),
        ndc: if code == "J2350" { Some("50242015001".into()) } else { None },
        program: Some("commercial".into()),
        rendering_npi: None,
        billing_npi: None,
        paid_amount: Some(100.0),
        allowed_amount: None,
        charge_amount: None,
        presence: Presence { payer: true, pos: true, modifiers: true, ndc: true },
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
        self.modifiers = m.iter().map(|&s| Text::from(s)).collect();
        self.modifiers.sort();
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
}

/// Evaluates one rule on one patient's lines; returns its findings.
pub fn fire(rule: &str, lines: Vec<Line>) -> Vec<Finding> {
    fire_with(rule, lines, Run::default())
}

pub fn fire_with(rule: &str, lines: Vec<Line>, run: Run) -> Vec<Finding> {
    let policy = Policy::default_policy().expect("policy");
    let horizon = run.horizon.or(run.to).or_else(|| lines.iter().map(|l| l.service_date).max()).unwrap_or_default();
    let (active, _) = net_reversals(lines.iter().collect());
    let p = build_patient("P1".into(), active, &policy);
    let ctx = Ctx { policy: &policy, from: run.from, to: run.to, horizon };
    let def = RULES.iter().find(|r| r.id == rule).expect("rule id");
    (def.eval)(&p, &ctx).findings
}
