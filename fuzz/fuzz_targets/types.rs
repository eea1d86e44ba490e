//! The column type check and the timestamp reading: arbitrary bytes choose
//! a type for each column of a table (scalar, nested, zoned timestamps,
//! dictionaries) and its values; reading the table must be refused exactly
//! when a column's type is one the audit cannot read, say so in one line
//! naming the column and its type, and never panic.
#![no_main]

use std::sync::Arc;

use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::{
    ArrayRef, BooleanArray, Date32Array, DictionaryArray, Float64Array, Int64Array, RecordBatch, StringArray, StructArray,
    TimestampMicrosecondArray, TimestampNanosecondArray, TimestampSecondArray, types::Int32Type,
};
use arrow_schema::{DataType, Field, Schema};
use claims_audit::columns::{ColumnMap, col};
use claims_audit::ingest::ScanSpec;
use claims_audit::ingest::arrow::read_table;
use claims_audit::ingest::arrow_types::{calendar_dates, refusal};
use claims_audit::policy::Policy;
use libfuzzer_sys::fuzz_target;

const COLUMNS: [(&str, usize); 7] = [
    ("claim_id", col::CLAIM_ID),
    ("claim_line_number", col::CLAIM_LINE_NUMBER),
    ("person_id", col::PERSON_ID),
    ("claim_line_start_date", col::LINE_START),
    ("hcpcs_code", col::HCPCS),
    ("service_unit_quantity", col::UNITS),
    ("diagnosis_code_1", col::DX1),
];
const ZONES: [Option<&str>; 6] = [None, Some("UTC"), Some("America/New_York"), Some("+05:30"), Some("-0800"), Some("Not/AZone")];

/// A column of `n` rows of the type `pick` chooses, values from `v`.
fn column(pick: u8, n: usize, v: &[i64]) -> ArrayRef {
    let at = |i: usize| v.get(i % v.len().max(1)).copied().unwrap_or(0);
    let text = || StringArray::from_iter_values((0..n).map(|i| ["J2350", "G35", "P1", "300", "2025-03-04", ""][at(i).rem_euclid(6) as usize]));
    let zone = ZONES[(pick as usize / 16) % ZONES.len()];
    match pick % 12 {
        0 => Arc::new(text()),
        1 => Arc::new(Int64Array::from_iter_values((0..n).map(at))),
        2 => Arc::new(Float64Array::from_iter_values((0..n).map(|i| at(i) as f64 / 7.0))),
        3 => Arc::new(Date32Array::from_iter_values((0..n).map(|i| at(i) as i32))),
        4 => Arc::new(TimestampSecondArray::from_iter_values((0..n).map(at)).with_timezone_opt(zone)),
        5 => Arc::new(TimestampMicrosecondArray::from_iter_values((0..n).map(at)).with_timezone_opt(zone)),
        6 => Arc::new(TimestampNanosecondArray::from_iter_values((0..n).map(at)).with_timezone_opt(zone)),
        7 => Arc::new(text().into_iter().collect::<DictionaryArray<Int32Type>>()),
        8 => {
            let mut b = ListBuilder::new(StringBuilder::new());
            for s in text().iter() {
                b.values().append_option(s);
                b.append(true);
            }
            Arc::new(b.finish())
        }
        9 => Arc::new(StructArray::from(vec![(Arc::new(Field::new("code", DataType::Utf8, true)), Arc::new(text()) as ArrayRef)])),
        10 => Arc::new(BooleanArray::from_iter((0..n).map(|i| Some(at(i) % 2 == 0)))),
        _ => Arc::new(arrow_cast::cast(&text(), &DataType::Utf8View).unwrap_or_else(|_| Arc::new(text()))),
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < COLUMNS.len() + 1 {
        return;
    }
    let (picks, rest) = data.split_at(COLUMNS.len());
    let values: Vec<i64> = rest.chunks(8).map(|c| c.iter().fold(0i64, |acc, &b| acc.rotate_left(8) ^ b as i64)).collect();
    let n = (rest.len() % 17) + 1;
    let cols: Vec<ArrayRef> = picks.iter().map(|&p| column(p, n, &values)).collect();
    // Timestamps alone: a date or an error, never a panic.
    for c in &cols {
        let _ = calendar_dates(c);
    }
    let fields: Vec<Field> = COLUMNS.iter().zip(&cols).map(|((name, _), c)| Field::new(*name, c.data_type().clone(), true)).collect();
    let schema = Arc::new(Schema::new(fields));
    let Ok(batch) = RecordBatch::try_new(Arc::clone(&schema), cols) else { return };
    static POLICY: std::sync::OnceLock<Policy> = std::sync::OnceLock::new();
    let policy = POLICY.get_or_init(|| Policy::default_policy().expect("policy"));
    let columns = ColumnMap::default();
    let spec = ScanSpec::new(policy, &columns);
    let refused = COLUMNS.iter().zip(schema.fields()).find(|((_, slot), f)| refusal(*slot, f.data_type()).is_some());
    match (read_table("fuzz", 0, &schema, std::slice::from_ref(&batch), &spec), refused) {
        (Err(e), Some(((name, _), _))) => {
            let msg = e.to_string();
            assert!(msg.starts_with("fuzz: ") && msg.contains(name) && !msg.contains('\n'), "{msg}");
        }
        (Ok(_), None) => {}
        // A readable type may still fail as a whole (an unknown zone name),
        // in one line naming the table.
        (Err(e), None) => assert!(e.to_string().starts_with("fuzz: ") && !e.to_string().contains('\n'), "{e}"),
        (Ok(_), Some(((name, _), f))) => panic!("{name} of type {} was read", f.data_type()),
    }
});
