//! End-to-end tests: the real binary on real files, outputs read back with
//! the arrow-rs `parquet` crate (never with polars). One test binary keeps
//! link time down.

mod common;
mod golden;
mod lifecycle;
mod outputs;
mod payer;
mod report;
mod robustness;
mod scale;
mod spill;
