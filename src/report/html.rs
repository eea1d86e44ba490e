//! report.html, the page a person opens: run header, charts (drawn with
//! plotters into inline SVG) and the top persons' dosing timelines, put
//! together with a template (minijinja). Self-contained: no script, font or
//! image is fetched from anywhere. Person ids appear as in the data: the
//! file is owner-only like every output.

use std::collections::BTreeMap;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
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
// Intervals against their window: the captions name these three.
const TOO_SOON: RGBColor = ERROR;
const IN_WINDOW: RGBColor = RGBColor(39, 174, 96);
const LATE: RGBColor = WARNING;
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
    /// The pharmacy claim that supplied the dose or was matched to it.
    pub dispense_claim_id: Option<String>,
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
    /// Money at stake, formatted (`unknown` when the extract had none).
    pub amount: String,
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

/// Money in few characters for an axis: `$950`, `$80k`, `$1.2M`.
fn short_money(v: &f64) -> String {
    let v = *v;
    if v.abs() >= 1e6 {
        format!("${:.1}M", v / 1e6)
    } else if v.abs() >= 1e3 {
        format!("${:.0}k", v / 1e3)
    } else {
        format!("${v:.0}")
    }
}

/// Horizontal bars, largest on top: (label, value, colour, text after the bar).
fn hbars(title: &str, rows: &[(String, f64, RGBColor, String)], x_desc: &str, x_label: &dyn Fn(&f64) -> String) -> String {
    let n = rows.len().max(1);
    let h = 70 + 28 * n as u32;
    svg(900, h, |root| {
        let max = rows.iter().map(|r| r.1).fold(0.0, f64::max).max(1.0);
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 17))
            .margin(10)
            .margin_right(24)
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
            .x_labels(6)
            .x_label_formatter(x_label)
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

/// Vertical bars: (label, value) in order, on an axis of whole counts.
fn vbars(title: &str, rows: &[(String, f64)], colour: RGBColor, y_desc: &str) -> String {
    let n = rows.len().max(1);
    svg(900, 320, |root| {
        let max = rows.iter().map(|r| r.1).fold(0.0, f64::max).max(1.0);
        // A whole-number top and at most one tick per count: no 0.5 ticks.
        let top = (max * 1.15).ceil().max(2.0);
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 17))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(segments(n), 0f64..top)
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
            .y_labels((top as usize + 1).min(8))
            .y_label_formatter(&whole)
            .light_line_style(WHITE)
            .y_desc(y_desc)
            .label_style(("sans-serif", 12))
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

/// Where an interval falls against its window: the captions' three colours.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timing {
    TooSoon,
    InWindow,
    Late,
}

impl Timing {
    fn of(days: i32, min: i32, max: i32) -> Timing {
        if days < min {
            Timing::TooSoon
        } else if days > max {
            Timing::Late
        } else {
            Timing::InWindow
        }
    }

    fn colour(self) -> RGBColor {
        match self {
            Timing::TooSoon => TOO_SOON,
            Timing::InWindow => IN_WINDOW,
            Timing::Late => LATE,
        }
    }
}

/// Intervals of one kind (the initiation pair, or dose to dose after it)
/// against their window, in bins of `bin` days on a log scale, so that ten
/// doses too soon stay visible beside 10,000 in the window. A bin that
/// straddles a window edge is split into a bar per timing; bars outside the
/// window carry their count.
fn interval_histogram(title: &str, days: &[i32], min: i32, max: i32, bin: i32) -> (String, [usize; 3]) {
    let mut tally = [0usize; 3];
    let top = (days.iter().copied().max().unwrap_or(0) + 2 * bin).clamp(max + 4 * bin, max * 2 + 4 * bin);
    let mut counts: BTreeMap<(i32, Timing), u64> = BTreeMap::new();
    for &d in days {
        let t = Timing::of(d, min, max);
        tally[t as usize] += 1;
        // Beyond the axis: counted in the last bin.
        *counts.entry((d.clamp(0, top - 1) / bin, t)).or_default() += 1;
    }
    let chart = svg(900, 300, |root| {
        let ymax = counts.values().copied().max().unwrap_or(1).max(1) as f64;
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 16))
            .margin(10)
            .margin_right(24)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..top as f64, (0.7f64..ymax * 4.0).log_scale())
            .map_err(e)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc(format!("days since the previous dose ({bin}-day bins; the last bin holds everything beyond)"))
            .y_desc("doses (log scale)")
            .x_labels(12)
            .x_label_formatter(&whole)
            .y_label_formatter(&log_tick)
            .light_line_style(WHITE)
            .label_style(("sans-serif", 12))
            .draw()
            .map_err(e)?;
        let mut bars = Vec::new();
        let mut labels = Vec::new();
        for group in counts.iter().collect::<Vec<_>>().chunk_by(|x, y| x.0.0 == y.0.0) {
            let k = group.len() as f64;
            for (j, ((bin_no, t), c)) in group.iter().enumerate() {
                let x0 = (*bin_no * bin) as f64 + j as f64 * bin as f64 / k;
                let x1 = x0 + bin as f64 / k;
                let mut r = Rectangle::new([(x0, 0.7), (x1, **c as f64)], t.colour().filled());
                r.set_margin(0, 0, 1, 1);
                bars.push(r);
                // Outside the window always; inside, where the bar is wide
                // enough for its figure (about 7 px a digit on an 800 px axis).
                let bar_px = (x1 - x0) * 800.0 / top as f64;
                if *t != Timing::InWindow || bar_px >= 7.0 * c.to_string().len() as f64 + 4.0 {
                    labels.push((format!("{c}"), ((x0 + x1) / 2.0, **c as f64)));
                }
            }
        }
        chart.draw_series(bars).map_err(e)?;
        let style = TextStyle::from(("sans-serif", 12).into_font()).color(&BLACK).pos(Pos::new(HPos::Center, VPos::Bottom));
        chart
            .draw_series(labels.into_iter().map(|(text, at)| EmptyElement::at(at) + Text::new(text, (0, -3), style.clone())))
            .map_err(e)?;
        for (x, colour) in [(min as f64 - 0.5, TOO_SOON), (max as f64 + 0.5, LATE)] {
            chart.draw_series(std::iter::once(PathElement::new(vec![(x, 0.7), (x, ymax * 4.0)], colour.stroke_width(2)))).map_err(e)?;
        }
        Ok(())
    });
    (chart, tally)
}

/// Labels of a log axis of counts: 1, 2, 5, 10, 20, 50, ... (the ticks
/// between stay unlabelled).
fn log_tick(v: &f64) -> String {
    let r = v.round();
    if (v - r).abs() > 1e-6 || r < 1.0 {
        return String::new();
    }
    let lead = r / 10f64.powi(r.log10().floor() as i32);
    if [1.0, 2.0, 5.0].iter().any(|x| (lead - x).abs() < 1e-6) { format!("{r:.0}") } else { String::new() }
}

/// One person's timeline: doses on top (size by dose, colour by phase,
/// hollow when the pharmacy supplied them, labelled at their dots),
/// home-infusion lines beneath (a per diem as long as its span), findings at
/// the bottom, on one date axis.
pub fn person_timeline(p: &PersonView) -> String {
    let dates: Vec<i32> = p
        .doses
        .iter()
        .map(|d| d.date.0)
        .chain(p.lines.iter().flat_map(|l| [l.date.0, l.end.map_or(l.date.0, |d| d.0)]))
        .chain(p.findings.iter().map(|f| f.date.0))
        .collect();
    let (first, last) = (dates.iter().min().copied().unwrap_or(0), dates.iter().max().copied().unwrap_or(0));
    let pad = ((last - first) / 20).max(10);
    let (lo, hi) = (first - pad, last + pad);
    const ROWS: [&str; 3] = ["findings", "home infusion", "doses"];
    svg(900, 200, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(8)
            .margin_top(14)
            // Room for the last date label, which is centred on its tick.
            .margin_right(44)
            .x_label_area_size(28)
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
            .x_labels(6)
            .x_label_formatter(&|x| Date(x.round() as i32).to_string())
            .label_style(("sans-serif", 12))
            .draw()
            .map_err(e)?;
        let at = |d: Date, r: usize| (d.0 as f64, SegmentValue::CenterOf(r));
        // A line covers its days: a one-day per diem is one day wide, centred on its date.
        chart
            .draw_series(p.lines.iter().map(|l| {
                let end = l.end.map_or(l.date.0, |d| d.0.max(l.date.0)) as f64;
                let mut r = Rectangle::new(
                    [(l.date.0 as f64 - 0.5, SegmentValue::Exact(1)), (end + 0.5, SegmentValue::Exact(2))],
                    LINE_GREY.filled(),
                );
                r.set_margin(16, 16, 0, 0);
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
        // Each label centred just above its dot; doses too close to label
        // apart (an initiation pair on a long axis) share one label.
        let style = TextStyle::from(("sans-serif", 12).into_font()).color(&BLACK).pos(Pos::new(HPos::Center, VPos::Bottom));
        let px_per_day = 730.0 / (hi - lo).max(1) as f64;
        let mut groups: Vec<Vec<&DoseView>> = Vec::new();
        for d in &p.doses {
            match groups.last_mut() {
                Some(g) if (d.date.0 - g[0].date.0) as f64 * px_per_day < 52.0 => g.push(d),
                _ => groups.push(vec![d]),
            }
        }
        chart
            .draw_series(groups.iter().map(|g| {
                let mid = (g[0].date.0 + g[g.len() - 1].date.0) as f64 / 2.0;
                let lift = if g.iter().any(|d| d.dose >= 600.0) { 11 } else { 8 };
                let doses: Vec<String> = g.iter().map(|d| crate::rules::units(d.dose)).collect();
                let label = if g.len() > 1 && doses.iter().all(|x| *x == doses[0]) {
                    format!("{} x {} mg", g.len(), doses[0])
                } else {
                    format!("{} mg", doses.join(" + "))
                };
                EmptyElement::at((mid, SegmentValue::CenterOf(2))) + Text::new(label, (0, -lift), style.clone())
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
    basis: String,
    findings: u64,
    new: usize,
    money: String,
    #[serde(skip)]
    money_value: f64,
}

#[derive(Serialize)]
struct PersonSection {
    person: PersonView,
    /// None for a person with at most one dose: a compact row, no timeline.
    svg: Option<String>,
    /// A compact row's one dose, in words.
    one_dose: String,
    money: String,
    errors: usize,
}

/// One row of "Act on first".
#[derive(Serialize)]
struct ActRow {
    person_id: String,
    rule_id: String,
    severity: String,
    status: String,
    date: String,
    claim_id: String,
    claim_line_number: i64,
    code: String,
    amount: String,
    message: String,
}

#[derive(Serialize)]
struct ResolvedRow {
    person_id: String,
    rule_id: String,
    severity: String,
    date: String,
    claim_id: String,
    claim_line_number: i64,
    amount: String,
    reason: String,
}

#[derive(Serialize)]
struct InputRow {
    path: String,
    kind: String,
    rows_read: u64,
    rows_rejected: u64,
}

/// Rows of "Act on first": errors and warnings before info, then the most
/// money at stake (a finding with no amount after those with one).
pub const ACT_FIRST: usize = 25;

/// Resolved findings listed on the page (resolved.parquet has them all).
const MAX_RESOLVED: usize = 100;

fn act_first(r: &RunResult) -> Vec<ActRow> {
    let mut order: Vec<usize> = (0..r.findings.len()).collect();
    let key = |k: &usize| {
        let f = &r.findings[*k];
        (f.severity == crate::model::Severity::Info, std::cmp::Reverse(Money(f.at_stake.unwrap_or(-1.0))), std::cmp::Reverse(f.severity))
    };
    order.sort_by_key(key);
    order
        .into_iter()
        .take(ACT_FIRST)
        .map(|k| {
            let f = &r.findings[k];
            ActRow {
                person_id: f.person_id.to_string(),
                rule_id: f.rule_id.to_string(),
                severity: f.severity.as_str().into(),
                status: if r.lifecycle.open.get(k).copied().unwrap_or(false) { "open" } else { "new" }.into(),
                date: f.service_date.to_string(),
                claim_id: f.claim_id.to_string(),
                claim_line_number: f.claim_line_number,
                code: f.hcpcs_code.to_string(),
                amount: f.at_stake.map_or("unknown".into(), money),
                message: f.message.clone(),
            }
        })
        .collect()
}

/// An amount ordered as a number (`total_cmp`), for sort keys.
#[derive(PartialEq)]
struct Money(f64);
impl Eq for Money {}
impl PartialOrd for Money {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Money {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&o.0)
    }
}

/// The report of a run.
pub fn render(opts: &RunOptions, policy: &Policy, r: &RunResult, run_id: &str) -> Result<String> {
    let totals = super::totals(r);
    let mut by_rule: BTreeMap<&str, (u64, usize, f64)> = BTreeMap::new();
    let mut by_sev = [0usize; 3];
    for (f, open) in r.findings.iter().zip(&r.lifecycle.open) {
        let e = by_rule.entry(f.rule_id).or_default();
        e.0 += 1;
        e.1 += usize::from(!*open);
        e.2 += f.at_stake.unwrap_or(0.0);
        by_sev[f.severity as usize] += 1;
    }
    let mut rules: Vec<RuleRow> = RULES
        .iter()
        .filter_map(|d| {
            let (n, new, m) = by_rule.get(d.id).copied()?;
            let severity = policy.severity(d.id).map_or("disabled", |s| s.as_str()).to_string();
            Some(RuleRow {
                rule_id: d.id.into(),
                category: d.category.into(),
                severity,
                basis: policy.basis(d.id).as_str().into(),
                findings: n,
                new,
                money: money(m),
                money_value: m,
            })
        })
        .collect();
    rules.sort_by(|a, b| b.money_value.total_cmp(&a.money_value).then(b.findings.cmp(&a.findings)).then(a.rule_id.cmp(&b.rule_id)));
    let rule_bars: Vec<(String, f64, RGBColor, String)> = rules
        .iter()
        .map(|x| {
            (
                x.rule_id.clone(),
                x.money_value,
                severity_colour(&x.severity),
                format!("{} · {} finding{}", x.money, x.findings, if x.findings == 1 { "" } else { "s" }),
            )
        })
        .collect();
    let chart_rules = hbars("Money at stake by rule (each finding counted)", &rule_bars, "money at stake", &short_money);

    let dosing = policy.file.dosing.values().next();
    let (min_days, max_days) = dosing.map_or((140, 210), |d| (d.min_interval_days, d.max_interval_days));
    let (pair_min, pair_max) = dosing.map_or((10, 21), |d| (d.pair_min_days, d.pair_max_days));
    let (mut pair, mut maintenance): (Vec<i32>, Vec<i32>) = (Vec::new(), Vec::new());
    r.episodes.for_each_unordered(|e| {
        if let Some(d) = e.days_since_previous {
            if e.phase == "initiation_second" { pair.push(d) } else { maintenance.push(d) }
        }
    })?;
    let (chart_intervals, interval_tally) =
        interval_histogram("After the initiation pair: days between consecutive doses", &maintenance, min_days, max_days, 7);
    let (chart_pair, pair_tally) = interval_histogram("Initiation pair: days between the two 300 mg doses", &pair, pair_min, pair_max, 1);

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
    let resolved: Vec<ResolvedRow> = r
        .lifecycle
        .resolved
        .iter()
        .take(MAX_RESOLVED)
        .map(|x| ResolvedRow {
            person_id: x.row.person_id.clone(),
            rule_id: x.row.rule_id.clone(),
            severity: x.row.severity.clone(),
            date: x.row.service_date.to_string(),
            claim_id: x.row.claim_id.clone(),
            claim_line_number: x.row.claim_line_number,
            amount: x.row.amount_at_stake.map_or("unknown".into(), money),
            reason: x.reason.as_str().to_string(),
        })
        .collect();
    let flagged_lines = r
        .findings
        .iter()
        .map(|f| (f.person_id.as_str(), f.claim_id.as_str(), f.claim_line_number))
        .collect::<std::collections::BTreeSet<_>>()
        .len();

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
        money_total => money(totals.amount_at_stake_distinct_lines),
        flagged_lines => flagged_lines,
        findings => r.findings.len(),
        errors => by_sev[2],
        warnings => by_sev[1],
        infos => by_sev[0],
        has_previous => r.lifecycle.previous_run_id.is_some(),
        previous_run_id => r.lifecycle.previous_run_id.clone(),
        new => r.lifecycle.new_count(),
        open => r.lifecycle.open_count(),
        resolved_count => r.lifecycle.resolved.len(),
        resolved => resolved,
        max_resolved => MAX_RESOLVED,
        act_first => act_first(r),
        act_first_max => ACT_FIRST,
        rules => rules,
        chart_rules => chart_rules,
        chart_intervals => chart_intervals,
        interval_tally => interval_tally,
        chart_pair => chart_pair,
        pair_tally => pair_tally,
        min_days => min_days,
        max_days => max_days,
        pair_min => pair_min,
        pair_max => pair_max,
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

/// The persons with the most money at stake (then errors), with their
/// timelines; and how many persons have findings at all.
fn top_persons(r: &RunResult, cap: usize) -> Result<(Vec<PersonSection>, usize)> {
    let mut ranked = super::stake::ranked_persons(&r.findings);
    let with_findings = ranked.len();
    ranked.truncate(cap);
    // Their episodes and lines, in one pass over each (a spilled run's are on disk).
    let top: crate::util::FastSet<&str> = ranked.iter().map(|p| p.person_id).collect();
    let (episodes, timeline) = (r.episodes.rows_of(&top)?, r.timeline.rows_of(&top)?);
    let sections = ranked
        .into_iter()
        .map(|p| {
            let view = person_view(r, &episodes, &timeline, p.person_id);
            // One dose has no sequence to show: a compact row says as much.
            let svg = (view.doses.len() > 1).then(|| person_timeline(&view));
            let one_dose = match view.doses.as_slice() {
                [d] => format!(
                    "one dose: {} {} {} mg{}",
                    d.date,
                    d.drug,
                    crate::rules::units(d.dose),
                    if d.supply == "pharmacy" { " (dispensed by a pharmacy)" } else { "" }
                ),
                _ => "no dose in range".into(),
            };
            PersonSection { person: view, svg, one_dose, money: money(p.at_stake), errors: p.errors }
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
            amount: f.at_stake.map_or("unknown".into(), money),
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
            dispense_claim_id: e.dispense_claim_id.as_deref().map(str::to_string),
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
