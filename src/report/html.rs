//! report.html, the page a person opens: run header, charts (drawn with
//! plotters into inline SVG) and the top persons' dosing timelines, put
//! together with a template (minijinja). Self-contained: no script, font or
//! image is fetched from anywhere. Person ids appear as in the data: the
//! file is owner-only like every output.

use std::collections::BTreeMap;

use plotters::coord::Shift;
use plotters::prelude::*;
use serde::Serialize;

use super::summary::money;
use crate::error::{Error, Result};
use crate::model::Date;
use crate::pipeline::{RunOptions, RunResult};
use crate::policy::Policy;
use crate::results::{EpisodeRow, TimelineLine};
use crate::rules::RULES;

const REPORT_TEMPLATE: &str = include_str!("templates/report.html");
const PERSON_TEMPLATE: &str = include_str!("templates/person.html");
const CSS: &str = include_str!("templates/style.css");

/// Persons shown with a timeline: enough for a morning's review, small
/// enough that a payer-wide run's page stays a few MB.
pub const MAX_PERSONS: usize = 25;

// Colours: severity, and phase on timelines.
const ERROR: RGBColor = RGBColor(192, 57, 43);
const WARNING: RGBColor = RGBColor(230, 126, 34);
const INFO: RGBColor = RGBColor(127, 140, 141);
const INITIATION: RGBColor = RGBColor(41, 128, 185);
const MAINTENANCE: RGBColor = RGBColor(39, 174, 96);
const LINE_GREY: RGBColor = RGBColor(90, 90, 90);

fn severity_colour(s: &str) -> RGBColor {
    match s {
        "error" => ERROR,
        "warning" => WARNING,
        _ => INFO,
    }
}

/// One person's doses, home-infusion lines and findings: what a timeline
/// draws and `explain` prints.
#[derive(Debug, Clone, Serialize)]
pub struct PersonView {
    pub person_id: String,
    pub doses: Vec<DoseView>,
    pub lines: Vec<LineView>,
    pub findings: Vec<FindingView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DoseView {
    pub date: Date,
    pub drug: String,
    pub dose: f64,
    pub phase: String,
    pub days_since_previous: Option<i32>,
    pub supply: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct LineView {
    pub date: Date,
    pub end: Option<Date>,
    pub code: String,
    pub units: f64,
    pub role: String,
    pub claim_id: String,
    pub claim_line_number: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FindingView {
    pub date: Date,
    pub rule_id: String,
    pub severity: String,
    pub status: String,
    pub code: String,
    pub claim_id: String,
    pub claim_line_number: i64,
    pub message: String,
    /// The message's first clause, for one line per finding.
    pub short: String,
}

/// The first clause of a message (what was found), at most ~200 characters.
pub fn short_message(m: &str) -> String {
    let first = m.split("; ").next().unwrap_or(m);
    if first.chars().count() <= 200 { first.to_string() } else { format!("{}…", first.chars().take(199).collect::<String>()) }
}

/// Renders an SVG of `w` x `h` with `draw`; errors become an SVG comment so a
/// chart that cannot be drawn never fails the run.
fn svg(w: u32, h: u32, draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> std::result::Result<(), String>) -> String {
    let mut buf = String::new();
    let outcome = {
        let root = SVGBackend::with_string(&mut buf, (w, h)).into_drawing_area();
        let r = root.fill(&WHITE).map_err(|e| e.to_string()).and_then(|_| draw(&root));
        let _ = root.present();
        r
    };
    match outcome {
        Ok(()) => buf,
        Err(e) => format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"40\"><text x=\"8\" y=\"24\">chart not drawn: {}</text></svg>",
            escape(&e)
        ),
    }
}

/// `n` segments (plotters' segmented range over `0..k` has k + 1).
fn segments(n: usize) -> plotters::coord::ranged1d::SegmentedCoord<plotters::coord::types::RangedCoordusize> {
    (0..n.saturating_sub(1)).into_segmented()
}

/// Tick labels of counts: whole numbers only.
fn whole(v: &f64) -> String {
    if v.fract().abs() < 1e-9 { format!("{v:.0}") } else { String::new() }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn e(x: impl std::fmt::Display) -> String {
    x.to_string()
}

/// Horizontal bars, largest on top: (label, value, colour, text after the bar).
fn hbars(title: &str, rows: &[(String, f64, RGBColor, String)], x_desc: &str) -> String {
    let n = rows.len().max(1);
    let h = 70 + 28 * n as u32;
    svg(900, h, |root| {
        let max = rows.iter().map(|r| r.1).fold(0.0, f64::max).max(1.0);
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 17))
            .margin(10)
            .x_label_area_size(34)
            .y_label_area_size(220)
            .build_cartesian_2d(0f64..max * 1.45, segments(n))
            .map_err(e)?;
        // Segment 0 is at the bottom: the first row goes on top.
        let label = |v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(i) => rows.get(n - 1 - *i).map(|r| r.0.clone()).unwrap_or_default(),
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n)
            .y_label_formatter(&label)
            .x_label_formatter(&whole)
            .light_line_style(WHITE)
            .x_desc(x_desc)
            .label_style(("sans-serif", 12))
            .draw()
            .map_err(e)?;
        chart
            .draw_series(rows.iter().enumerate().map(|(k, r)| {
                let i = n - 1 - k;
                let mut bar = Rectangle::new([(0.0, SegmentValue::Exact(i)), (r.1, SegmentValue::Exact(i + 1))], r.2.filled());
                bar.set_margin(4, 4, 0, 0);
                bar
            }))
            .map_err(e)?;
        chart
            .draw_series(
                rows.iter()
                    .enumerate()
                    .map(|(k, r)| Text::new(format!(" {}", r.3), (r.1, SegmentValue::CenterOf(n - 1 - k)), ("sans-serif", 12))),
            )
            .map_err(e)?;
        Ok(())
    })
}

/// Vertical bars: (label, value) in order.
fn vbars(title: &str, rows: &[(String, f64)], colour: RGBColor, y_desc: &str) -> String {
    let n = rows.len().max(1);
    svg(900, 320, |root| {
        let max = rows.iter().map(|r| r.1).fold(0.0, f64::max).max(1.0);
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 17))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(segments(n), 0f64..max * 1.15)
            .map_err(e)?;
        let label = |v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(i) => rows.get(*i).map(|r| r.0.clone()).unwrap_or_default(),
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_formatter(&label)
            .y_label_formatter(&whole)
            .light_line_style(WHITE)
            .y_desc(y_desc)
            .label_style(("sans-serif", 11))
            .draw()
            .map_err(e)?;
        chart
            .draw_series(rows.iter().enumerate().map(|(i, r)| {
                let mut bar = Rectangle::new([(SegmentValue::Exact(i), 0.0), (SegmentValue::Exact(i + 1), r.1)], colour.filled());
                bar.set_margin(0, 0, 3, 3);
                bar
            }))
            .map_err(e)?;
        Ok(())
    })
}

/// Days between consecutive doses, in weekly buckets, with the policy's
/// minimum interval and overdue threshold drawn on it.
fn interval_histogram(days: &[i32], min_days: i32, max_days: i32) -> String {
    const WEEK: i32 = 7;
    let top = (days.iter().copied().max().unwrap_or(0) + 2 * WEEK).clamp(max_days + 4 * WEEK, 420);
    let buckets = (top / WEEK + 1) as usize;
    let mut counts = vec![0u32; buckets];
    for &d in days {
        counts[(d.clamp(0, top) / WEEK) as usize] += 1;
    }
    svg(900, 340, |root| {
        let ymax = counts.iter().copied().max().unwrap_or(0).max(1) as f64 * 1.2;
        let mut chart = ChartBuilder::on(root)
            .caption("Days between consecutive doses (all persons, doses in range)", ("sans-serif", 17))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..(buckets as i32 * WEEK) as f64, 0f64..ymax)
            .map_err(e)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc("days since the previous dose (weekly bins)")
            .y_desc("doses")
            .y_label_formatter(&whole)
            .light_line_style(WHITE)
            .label_style(("sans-serif", 11))
            .draw()
            .map_err(e)?;
        chart
            .draw_series(counts.iter().enumerate().filter(|(_, c)| **c > 0).map(|(b, c)| {
                let x0 = (b as i32 * WEEK) as f64;
                let colour = if (b as i32 * WEEK) < min_days && b > 3 { ERROR } else { INITIATION };
                let mut r = Rectangle::new([(x0, 0.0), (x0 + WEEK as f64, *c as f64)], colour.filled());
                r.set_margin(0, 0, 1, 1);
                r
            }))
            .map_err(e)?;
        for (x, colour, text) in [(min_days, ERROR, format!("minimum {min_days} d")), (max_days, WARNING, format!("overdue {max_days} d"))]
        {
            chart
                .draw_series(std::iter::once(PathElement::new(vec![(x as f64, 0.0), (x as f64, ymax)], colour.stroke_width(2))))
                .map_err(e)?;
            chart.draw_series(std::iter::once(Text::new(text, (x as f64 + 2.0, ymax * 0.93), ("sans-serif", 12)))).map_err(e)?;
        }
        Ok(())
    })
}

/// One person's timeline: doses on top (size by dose, colour by phase,
/// hollow when the pharmacy supplied them), home-infusion lines beneath (a
/// per diem's span as a bar), findings at the bottom, on one date axis.
pub fn person_timeline(p: &PersonView) -> String {
    let dates: Vec<i32> =
        p.doses.iter().map(|d| d.date.0).chain(p.lines.iter().map(|l| l.date.0)).chain(p.findings.iter().map(|f| f.date.0)).collect();
    let (lo, hi) = (dates.iter().min().copied().unwrap_or(0) - 14, dates.iter().max().copied().unwrap_or(0) + 14);
    const ROWS: [&str; 3] = ["findings", "home infusion", "doses"];
    svg(900, 190, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(8)
            .x_label_area_size(26)
            .y_label_area_size(110)
            .build_cartesian_2d(lo as f64..hi as f64, segments(ROWS.len()))
            .map_err(e)?;
        let row = |v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(i) => ROWS.get(*i).map(|r| r.to_string()).unwrap_or_default(),
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .light_line_style(WHITE)
            .y_labels(ROWS.len())
            .y_label_formatter(&row)
            .x_labels(7)
            .x_label_formatter(&|x| Date(*x as i32).to_string())
            .label_style(("sans-serif", 11))
            .draw()
            .map_err(e)?;
        let at = |d: Date, r: usize| (d.0 as f64, SegmentValue::CenterOf(r));
        chart
            .draw_series(p.lines.iter().map(|l| {
                let end = l.end.map_or(l.date.0, |d| d.0.max(l.date.0)) as f64;
                let mut r = Rectangle::new(
                    [(l.date.0 as f64 - 1.0, SegmentValue::Exact(1)), (end + 1.0, SegmentValue::Exact(2))],
                    LINE_GREY.filled(),
                );
                r.set_margin(14, 14, 0, 0);
                r
            }))
            .map_err(e)?;
        chart
            .draw_series(p.doses.iter().map(|d| {
                let colour = if d.phase.starts_with("initiation") { INITIATION } else { MAINTENANCE };
                let r = if d.dose >= 600.0 { 9 } else { 6 };
                let style = if d.supply == "pharmacy" { colour.stroke_width(3) } else { colour.filled() };
                Circle::new(at(d.date, 2), r, style)
            }))
            .map_err(e)?;
        chart
            .draw_series(p.doses.iter().map(|d| {
                let pos = (d.date.0 as f64 + 3.0, SegmentValue::Exact(2));
                Text::new(format!("{} mg", crate::rules::units(d.dose)), pos, ("sans-serif", 10))
            }))
            .map_err(e)?;
        chart
            .draw_series(p.findings.iter().map(|f| TriangleMarker::new(at(f.date, 0), 7, severity_colour(&f.severity).filled())))
            .map_err(e)?;
        Ok(())
    })
}

#[derive(Serialize)]
struct RuleRow {
    rule_id: String,
    category: String,
    severity: String,
    findings: u64,
    new: usize,
    money: String,
}

#[derive(Serialize)]
struct PersonSection {
    person: PersonView,
    svg: String,
    errors: usize,
}

#[derive(Serialize)]
struct InputRow {
    path: String,
    kind: String,
    rows_read: u64,
    rows_rejected: u64,
}

/// The report of a run.
pub fn render(opts: &RunOptions, policy: &Policy, r: &RunResult, run_id: &str) -> Result<String> {
    let totals = super::totals(r);
    let mut by_rule: BTreeMap<&str, (u64, usize, f64)> = BTreeMap::new();
    for (f, open) in r.findings.iter().zip(&r.lifecycle.open) {
        let e = by_rule.entry(f.rule_id).or_default();
        e.0 += 1;
        e.1 += usize::from(!*open);
        e.2 += f.at_stake.unwrap_or(0.0);
    }
    let mut rules: Vec<RuleRow> = RULES
        .iter()
        .filter_map(|d| {
            let (n, new, m) = by_rule.get(d.id).copied()?;
            let severity = policy.severity(d.id).map_or("disabled", |s| s.as_str()).to_string();
            Some(RuleRow { rule_id: d.id.into(), category: d.category.into(), severity, findings: n, new, money: money(m) })
        })
        .collect();
    rules.sort_by(|a, b| b.findings.cmp(&a.findings).then(a.rule_id.cmp(&b.rule_id)));
    let rule_bars: Vec<(String, f64, RGBColor, String)> = rules
        .iter()
        .map(|x| (x.rule_id.clone(), x.findings as f64, severity_colour(&x.severity), format!("{} · {}", x.findings, x.money)))
        .collect();
    let chart_rules = hbars("Findings by rule (colour: severity; money at stake after the count)", &rule_bars, "findings");

    let dosing = policy.file.dosing.values().next();
    let (min_days, max_days) = dosing.map_or((140, 210), |d| (d.min_interval_days, d.max_interval_days));
    let mut intervals: Vec<i32> = Vec::new();
    r.episodes.for_each_unordered(|e| intervals.extend(e.days_since_previous))?;
    let chart_intervals = interval_histogram(&intervals, min_days, max_days);

    let mut by_month: BTreeMap<String, f64> = BTreeMap::new();
    let mut by_program: BTreeMap<String, f64> = BTreeMap::new();
    for f in &r.findings {
        let (y, m, _) = f.service_date.ymd();
        *by_month.entry(format!("{y:04}-{m:02}")).or_default() += 1.0;
        *by_program.entry(f.payer_program.as_deref().unwrap_or("unknown (no payer column)").to_string()).or_default() += 1.0;
    }
    // The last two years of months at most.
    let months: Vec<(String, f64)> = by_month.into_iter().rev().take(24).collect::<Vec<_>>().into_iter().rev().collect();
    let chart_months = vbars("Findings by month of service", &months, INITIATION, "findings");
    let programs: Vec<(String, f64)> = by_program.into_iter().collect();
    let chart_programs = vbars("Findings by payer program", &programs, MAINTENANCE, "findings");

    let (persons, persons_with_findings) = top_persons(r, MAX_PERSONS)?;

    let ctx = minijinja::context! {
        css => CSS,
        run_id => run_id,
        policy_name => policy.name(),
        policy_version => policy.version(),
        catalogue => policy.file.policy.catalogue_version.clone(),
        range => range_text(opts),
        run_date => opts.run_date.to_string(),
        inputs => r.files.iter().map(|f| InputRow { path: f.path.clone(), kind: f.kind.map_or("", |k| k.as_str()).into(), rows_read: f.counts.rows_read, rows_rejected: f.counts.rows_rejected }).collect::<Vec<_>>(),
        totals => &totals,
        findings => r.findings.len(),
        has_previous => r.lifecycle.previous_run_id.is_some(),
        previous_run_id => r.lifecycle.previous_run_id.clone(),
        new => r.lifecycle.new_count(),
        open => r.lifecycle.open_count(),
        resolved => r.lifecycle.resolved.len(),
        rules => rules,
        chart_rules => chart_rules,
        chart_intervals => chart_intervals,
        chart_months => chart_months,
        chart_programs => chart_programs,
        persons => persons,
        persons_with_findings => persons_with_findings,
        max_persons => MAX_PERSONS,
    };
    render_template("report.html", REPORT_TEMPLATE, ctx)
}

/// One person's page (`explain --html`).
pub fn render_person(p: &PersonView, source: &str) -> Result<String> {
    let ctx = minijinja::context! { css => CSS, source => source, person => p, svg => person_timeline(p) };
    render_template("person.html", PERSON_TEMPLATE, ctx)
}

fn render_template(name: &str, source: &str, ctx: minijinja::Value) -> Result<String> {
    let mut env = minijinja::Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    env.add_template(name, source).map_err(|e| Error::Internal(format!("{name} template: {e}")))?;
    env.get_template(name).and_then(|t| t.render(ctx)).map_err(|e| Error::Internal(format!("{name}: {e}")))
}

fn range_text(opts: &RunOptions) -> String {
    match (opts.from, opts.to) {
        (None, None) => "all dates".into(),
        (f, t) => format!("{} to {}", f.map_or("the start".into(), |d| d.to_string()), t.map_or("the end".into(), |d| d.to_string())),
    }
}

/// The persons with the most error findings (then findings), with their
/// timelines; and how many persons have findings at all.
fn top_persons(r: &RunResult, cap: usize) -> Result<(Vec<PersonSection>, usize)> {
    let mut score: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for f in &r.findings {
        let s = score.entry(&f.person_id).or_default();
        s.0 += usize::from(f.severity.as_str() == "error");
        s.1 += 1;
    }
    let with_findings = score.len();
    let mut ranked: Vec<(&str, (usize, usize))> = score.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    ranked.truncate(cap);
    // Their episodes and lines, in one pass over each (a spilled run's are on disk).
    let top: crate::util::FastSet<&str> = ranked.iter().map(|r| r.0).collect();
    let (episodes, timeline) = (r.episodes.rows_of(&top)?, r.timeline.rows_of(&top)?);
    let sections = ranked
        .into_iter()
        .map(|(person, (errors, _))| {
            let view = person_view(r, &episodes, &timeline, person);
            let svg = person_timeline(&view);
            PersonSection { person: view, svg, errors }
        })
        .collect();
    Ok((sections, with_findings))
}

/// A person's view from a run's findings and some of its episodes and
/// timeline lines. All are sorted by person, so each is a binary search away.
pub fn person_view(r: &RunResult, episodes: &[EpisodeRow], timeline: &[TimelineLine], person: &str) -> PersonView {
    let f0 = r.findings.partition_point(|f| f.person_id.as_str() < person);
    let findings = r.findings[f0..]
        .iter()
        .zip(&r.lifecycle.open[f0..])
        .take_while(|(f, _)| f.person_id == person)
        .map(|(f, open)| FindingView {
            date: f.service_date,
            rule_id: f.rule_id.into(),
            severity: f.severity.as_str().into(),
            status: if *open { "open" } else { "new" }.into(),
            code: f.hcpcs_code.to_string(),
            claim_id: f.claim_id.to_string(),
            claim_line_number: f.claim_line_number,
            message: f.message.clone(),
            short: short_message(&f.message),
        })
        .collect();
    let e0 = episodes.partition_point(|e| e.person_id.as_str() < person);
    let doses = episodes[e0..]
        .iter()
        .take_while(|e| e.person_id == person)
        .map(|e| DoseView {
            date: e.administration_date,
            drug: e.drug_code.to_string(),
            dose: e.dose_units,
            phase: e.phase.into(),
            days_since_previous: e.days_since_previous,
            supply: e.supply.into(),
        })
        .collect();
    let t0 = timeline.partition_point(|l| l.person_id.as_str() < person);
    let lines = timeline[t0..]
        .iter()
        .take_while(|l| l.person_id == person)
        .map(|l| LineView {
            date: l.service_date,
            end: l.end_date,
            code: l.hcpcs_code.to_string(),
            units: l.units,
            role: l.role.into(),
            claim_id: l.claim_id.to_string(),
            claim_line_number: l.claim_line_number,
        })
        .collect();
    PersonView { person_id: person.to_string(), doses, lines, findings }
}
