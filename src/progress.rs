//! Progress bars on stderr: shown only on a terminal and without `--quiet`.
//! Bars carry stage names and counts, never identifiers, codes or dates.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

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
        let template = if stage == "read" {
            "{prefix:>9} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}"
        } else {
            "{prefix:>9} [{bar:30}] {pos}/{len} {per_sec} {eta}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(stage.to_string());
        bar
    }
}
