//! Differential fuzzing of the row readers: arbitrary bytes as a CSV extract
//! through the fast reader and the plain (csv crate) reader must give the
//! same rows, lines and rejects, and neither may panic. The value parsers
//! get the same bytes too.
#![no_main]

use std::path::Path;

use claims_audit::columns::ColumnMap;
use claims_audit::model::Date;
use claims_audit::ingest::{ScanSpec, csv_fast, csv_plain};
use claims_audit::model::codes::{normalize_bill_type, normalize_dx, normalize_ndc, normalize_pos, normalize_revenue, parse_number};
use claims_audit::policy::Policy;
use libfuzzer_sys::fuzz_target;

const HEADER: &[u8] = b"claim_id,claim_line_number,person_id,claim_line_start_date,claim_line_end_date,hcpcs_code,service_unit_quantity,diagnosis_code_1,place_of_service_code,ndc_code,payer\n";

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = Date::parse(s);
        let _ = normalize_ndc(s);
        let _ = normalize_pos(s);
        let _ = parse_number(s);
        let _ = normalize_dx(s);
        let _ = normalize_bill_type(s);
        let _ = normalize_revenue(s);
    }
    static POLICY: std::sync::OnceLock<Policy> = std::sync::OnceLock::new();
    let policy = POLICY.get_or_init(|| Policy::default_policy().expect("policy"));
    let columns = ColumnMap::default();
    let spec = ScanSpec::new(policy, &columns);
    // With a fixed header (so rows are reached) and as a whole file.
    for input in [[HEADER, data].concat(), data.to_vec()] {
        let path = Path::new("fuzz.csv");
        let fast = csv_fast::read_from(&mut input.as_slice(), path, 0, &spec, &|_| {});
        let plain = csv_plain::read_bytes(&input, path, 0, &spec);
        match (fast, plain) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a.stats.counts.rows_read, b.stats.counts.rows_read, "rows read");
                assert_eq!(a.stats.counts.rows_rejected, b.stats.counts.rows_rejected, "rows rejected");
                for (x, y) in a.rejects.iter().zip(&b.rejects) {
                    assert_eq!(x, y, "reject");
                }
                assert_eq!(a.rejects.len(), b.rejects.len(), "rejects");
                for (x, y) in a.all_lines().zip(b.all_lines()) {
                    assert_eq!(x, y, "line");
                }
                assert_eq!(a.all_lines().count(), b.all_lines().count(), "lines");
            }
            (Err(_), Err(_)) => {}
            (a, b) => panic!("readers disagree: fast ok={} plain ok={}", a.is_ok(), b.is_ok()),
        }
    }
});
