//! End-to-end tests: the real binary on real files, outputs read back with
//! the `parquet` crate's row reader (the Python tests read them with
//! pyarrow). One test binary keeps link time down.

mod codeset;
mod common;
mod delivery;
mod golden;
mod lifecycle;
mod outputs;
mod parquet_types;
mod payer;
mod report;
mod robustness;
mod safety;
mod scale;
mod spill;
