//! claims-audit: audits claim extracts for ocrelizumab (Ocrevus) home-infusion
//! coding and dosing problems. Data flows ingest -> normalize -> episodes ->
//! rules -> report; `pipeline` runs the stages and `main.rs` is a thin CLI.
//! Imports run downward: `model` (domain types) at the bottom; `policy`,
//! `columns`, `normalize`, `spill`, `duplicates`, `ingest`, `episodes` and
//! `rules` above it; `pipeline` and `report` on top.

pub mod codes_cmd;
pub mod codeset_files;
pub mod columns;
pub mod duplicates;
pub mod episodes;
pub mod error;
#[cfg(feature = "polars")]
pub mod frame;
#[cfg(feature = "parquet")]
pub mod generate;
pub mod history;
pub mod ingest;
pub mod model;
pub mod normalize;
pub mod pipeline;
pub mod policy;
pub mod progress;
pub mod report;
pub mod results;
pub mod rules;
pub mod scratch;
pub mod signals;
pub mod spill;
pub mod util;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
