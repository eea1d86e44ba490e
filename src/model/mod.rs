//! Domain types at the bottom of the crate: dates, inline text, code
//! normalization, the medical line, the pharmacy dispense, severity and the
//! rule catalogue. Everything else imports these; they import nothing above.

pub mod catalogue;
pub mod codes;
pub mod codeset;
pub mod date;
pub mod dispense;
pub mod ids;
pub mod line;
pub mod text;

pub use catalogue::{CATALOGUE, CATALOGUE_VERSION, RuleMeta, Severity};
pub use date::Date;
pub use dispense::Dispense;
pub use ids::finding_id;
pub use line::{Line, Presence, UncodedDrugDay};
pub use text::{Codes, Text};
