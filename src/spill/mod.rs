//! Flat memory at any extract size: kept rows past a budget go to temporary
//! partitions by hash(person) (`store`), in a compact record format
//! (`codec`), and the run audits one group of partitions at a time; the
//! result rows of each group go to sorted runs merged on the way out (`spool`).

pub mod codec;
mod spool;
mod store;

pub use codec::Rows;
pub use spool::{Record, Spool};
pub use store::{Batch, Held, Kept, KeptStore, Spilled};
