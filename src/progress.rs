//! Progress bars on stderr: shown only on a terminal and without `--quiet`.
//! Bars carry stage names and counts, never identifiers, codes or dates.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

pub struct Progress {
    visible: bool,
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        Progress { visible: !quiet && std::io::stderr().is_terminal() }
    }

    pub fn bar(&self, stage: &str, len: u64) -> ProgressBar {
        if !self.visible {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
        let (template, unit) = match stage {
            "read" => ("{prefix:>9} [{bar:30}] {bytes}/{total_bytes} {rate} {eta}", "B"),
            "evaluate" => ("{prefix:>9} [{bar:30}] {pos}/{len} {rate} {eta}", " persons"),
            _ => ("{prefix:>9} [{bar:30}] {pos}/{len} {rate} {eta}", " files"),
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            // indicatif's own {per_sec} prints fractions ("1104.3127/s").
            let rate = move |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = w.write_str(&rate(s.per_sec(), unit));
            };
            bar.set_style(style.with_key("rate", rate).progress_chars("=> "));
        }
        bar.set_prefix(stage.to_string());
        bar
    }
}

/// A rate in whole figures: `950 persons/s`, `12.3k persons/s`, `1.1M lines/s`.
pub fn rate(per_sec: f64, unit: &str) -> String {
    let v = if per_sec.is_finite() { per_sec.max(0.0) } else { 0.0 };
    let (x, suffix) = match v {
        v if v >= 1e9 => (v / 1e9, "G"),
        v if v >= 1e6 => (v / 1e6, "M"),
        v if v >= 1e3 => (v / 1e3, "k"),
        v => (v, ""),
    };
    // One decimal below 100 of a unit, none above (and none for plain units).
    let figure = if suffix.is_empty() || x >= 100.0 { format!("{x:.0}") } else { format!("{x:.1}") };
    format!("{figure}{suffix}{unit}/s")
}

#[cfg(test)]
mod tests {
    #[test]
    fn rates_are_whole_figures() {
        assert_eq!(super::rate(1_104_312.7, " lines"), "1.1M lines/s");
        assert_eq!(super::rate(950.4, " persons"), "950 persons/s");
        assert_eq!(super::rate(12_345.0, " persons"), "12.3k persons/s");
        assert_eq!(super::rate(412_000_000.0, "B"), "412MB/s");
        assert_eq!(super::rate(f64::NAN, " files"), "0 files/s");
    }
}
