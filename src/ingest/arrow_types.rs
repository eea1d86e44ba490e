//! The Arrow column types the audit reads, and timestamps as dates.
//!
//! A column the audit reads must hold one value per row that reads as text,
//! a number or a date (INPUT.md, "Files"). A list, struct or map where a
//! code, id, date or number belongs is refused before any row is read: cast
//! to text it would read `"[J2350]"` as a code and silently drop every row
//! from scope (spec-note 85).
//!
//! A timestamp is read as its calendar date in the column's own zone: UTC
//! for a UTC-adjusted one (DuckDB TIMESTAMPTZ, polars and pandas UTC
//! datetimes), the named zone (`America/New_York`) or fixed offset
//! (`+05:30`) when the column names one, the wall-clock date when it names
//! none (INT96 too). Done here, not by arrow's cast, which without arrow's
//! own time-zone feature knows no named zone, not even `UTC` (spec-note 86).

use std::str::FromStr;
use std::sync::Arc;

use arrow_array::builder::StringBuilder;
use arrow_array::cast::AsArray;
use arrow_array::types::{Date64Type, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType};
use arrow_array::{Array, ArrayRef, Date32Array, PrimitiveArray};
use arrow_schema::{DataType, Field, TimeUnit};
use chrono::{DateTime, Offset, TimeZone};

use crate::normalize::{TypedSlot, typed_slot};

/// Why a column of type `dt` cannot be read in slot `slot`, if it cannot: a
/// nested type (list, struct, map, union) anywhere, a type with no text
/// form the audit reads (boolean, time of day, duration, interval, fixed
/// binary), or a date or timestamp where a number belongs.
pub fn refusal(slot: usize, dt: &DataType) -> Option<&'static str> {
    let what = match typed_slot(slot) {
        TypedSlot::Number { .. } => "a number",
        TypedSlot::Date => "a date",
        TypedSlot::Text => "a code, id or name",
    };
    let scalar = scalar(dt);
    let fits = match typed_slot(slot) {
        TypedSlot::Number { .. } => scalar && !is_date(dt),
        _ => scalar,
    };
    (!fits).then_some(what)
}

/// One value per row that reads as text, a number or a date.
fn scalar(dt: &DataType) -> bool {
    use DataType::*;
    match dt {
        Null | Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 | Float16 | Float32 | Float64 => true,
        Decimal32(..) | Decimal64(..) | Decimal128(..) | Decimal256(..) => true,
        Utf8 | LargeUtf8 | Utf8View | Binary | LargeBinary | BinaryView => true,
        Date32 | Date64 | Timestamp(..) => true,
        Dictionary(_, v) => scalar(v),
        _ => false,
    }
}

fn is_date(dt: &DataType) -> bool {
    match dt {
        DataType::Date32 | DataType::Date64 | DataType::Timestamp(..) => true,
        DataType::Dictionary(_, v) => is_date(v),
        _ => false,
    }
}

/// A type as an analyst's tools print it (pyarrow's names): `list<string>`,
/// `struct<code: string>`, `timestamp[us, tz=UTC]`.
pub fn type_name(dt: &DataType) -> String {
    use DataType::*;
    let item = |f: &Field| type_name(f.data_type());
    match dt {
        Null => "null".into(),
        Boolean => "bool".into(),
        Utf8 => "string".into(),
        LargeUtf8 => "large_string".into(),
        Utf8View => "string_view".into(),
        Binary => "binary".into(),
        LargeBinary => "large_binary".into(),
        BinaryView => "binary_view".into(),
        FixedSizeBinary(n) => format!("fixed_size_binary[{n}]"),
        Float16 => "halffloat".into(),
        Float32 => "float".into(),
        Float64 => "double".into(),
        Timestamp(unit, tz) => match tz {
            Some(tz) => format!("timestamp[{}, tz={tz}]", unit_name(unit)),
            None => format!("timestamp[{}]", unit_name(unit)),
        },
        Time32(unit) => format!("time32[{}]", unit_name(unit)),
        Time64(unit) => format!("time64[{}]", unit_name(unit)),
        Duration(unit) => format!("duration[{}]", unit_name(unit)),
        List(f) => format!("list<{}>", item(f)),
        LargeList(f) => format!("large_list<{}>", item(f)),
        ListView(f) => format!("list_view<{}>", item(f)),
        LargeListView(f) => format!("large_list_view<{}>", item(f)),
        FixedSizeList(f, n) => format!("fixed_size_list<{}>[{n}]", item(f)),
        Struct(fields) => {
            let parts: Vec<String> = fields.iter().map(|f| format!("{}: {}", f.name(), item(f))).collect();
            format!("struct<{}>", parts.join(", "))
        }
        Map(entries, _) => match entries.data_type() {
            Struct(kv) if kv.len() == 2 => format!("map<{}, {}>", item(&kv[0]), item(&kv[1])),
            other => format!("map<{}>", type_name(other)),
        },
        Dictionary(k, v) => format!("dictionary<values={}, indices={}>", type_name(v), type_name(k)),
        Decimal32(p, s) | Decimal64(p, s) => format!("decimal({p}, {s})"),
        Decimal128(p, s) => format!("decimal128({p}, {s})"),
        Decimal256(p, s) => format!("decimal256({p}, {s})"),
        other => other.to_string().to_lowercase(),
    }
}

fn unit_name(u: &TimeUnit) -> &'static str {
    match u {
        TimeUnit::Second => "s",
        TimeUnit::Millisecond => "ms",
        TimeUnit::Microsecond => "us",
        TimeUnit::Nanosecond => "ns",
    }
}

/// A column's time zone: none (wall-clock time), a fixed offset, or a named
/// zone of the IANA database.
enum Zone {
    Fixed(i64),
    Named(chrono_tz::Tz),
}

impl Zone {
    /// `+05:30`, `-0800`, `+05`, or a name (`UTC`, `America/New_York`).
    fn parse(tz: &str) -> Option<Zone> {
        if let Some(off) = fixed_offset(tz) {
            return Some(Zone::Fixed(off));
        }
        // UTC as some writers spell it (the database's names are case-sensitive).
        if tz.eq_ignore_ascii_case("utc") || tz.eq_ignore_ascii_case("z") {
            return Some(Zone::Fixed(0));
        }
        chrono_tz::Tz::from_str(tz).ok().map(Zone::Named)
    }

    /// Seconds east of UTC at UTC time `secs` (None: out of chrono's range).
    fn offset(&self, secs: i64) -> Option<i64> {
        match self {
            Zone::Fixed(off) => Some(*off),
            Zone::Named(tz) => {
                let utc = DateTime::from_timestamp(secs, 0)?.naive_utc();
                Some(tz.offset_from_utc_datetime(&utc).fix().local_minus_utc() as i64)
            }
        }
    }
}

/// Seconds of a `±HH:MM`, `±HHMM` or `±HH` offset.
fn fixed_offset(tz: &str) -> Option<i64> {
    let (sign, rest) = match tz.as_bytes().first()? {
        b'+' => (1, &tz[1..]),
        b'-' => (-1, &tz[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|&c| c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !matches!(digits.len(), 2 | 4) || (rest.contains(':') && rest.len() != 5) {
        return None;
    }
    let h: i64 = digits[..2].parse().ok()?;
    let m: i64 = if digits.len() == 4 { digits[2..].parse().ok()? } else { 0 };
    (h <= 23 && m <= 59).then_some(sign * (h * 3600 + m * 60))
}

/// A timestamp or `Date64` column as its calendar dates (see the module
/// comment); None for any other type. Dates that do not fit a `Date32` (a
/// timestamp in seconds millions of years away) come as text that no date
/// parser accepts, so their rows are rejected, never read as empty. An
/// unknown zone name is an error naming it.
pub fn calendar_dates(a: &ArrayRef) -> Result<Option<ArrayRef>, String> {
    let (per_sec, tz): (i64, Option<&str>) = match a.data_type() {
        DataType::Timestamp(TimeUnit::Second, tz) => (1, tz.as_deref()),
        DataType::Timestamp(TimeUnit::Millisecond, tz) => (1_000, tz.as_deref()),
        DataType::Timestamp(TimeUnit::Microsecond, tz) => (1_000_000, tz.as_deref()),
        DataType::Timestamp(TimeUnit::Nanosecond, tz) => (1_000_000_000, tz.as_deref()),
        DataType::Date64 => (1_000, None),
        _ => return Ok(None),
    };
    let zone = match tz {
        None => None,
        Some(name) => Some(Zone::parse(name).ok_or_else(|| format!("unknown time zone \"{name}\""))?),
    };
    let values: PrimitiveArray<arrow_array::types::Int64Type> = match a.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => a.as_primitive::<TimestampSecondType>().reinterpret_cast(),
        DataType::Timestamp(TimeUnit::Millisecond, _) => a.as_primitive::<TimestampMillisecondType>().reinterpret_cast(),
        DataType::Timestamp(TimeUnit::Microsecond, _) => a.as_primitive::<TimestampMicrosecondType>().reinterpret_cast(),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => a.as_primitive::<TimestampNanosecondType>().reinterpret_cast(),
        _ => a.as_primitive::<Date64Type>().reinterpret_cast(),
    };
    // The local day of each value; None (a null) stays null; Err: out of range.
    let day = |v: i64| -> std::result::Result<i32, ()> {
        let secs = v.div_euclid(per_sec);
        let off = match &zone {
            None => 0,
            Some(z) => z.offset(secs).unwrap_or(0),
        };
        i32::try_from(secs.saturating_add(off).div_euclid(86_400)).map_err(|_| ())
    };
    let days: Vec<Option<std::result::Result<i32, ()>>> = values.iter().map(|v| v.map(day)).collect();
    if days.iter().flatten().all(|d| d.is_ok()) {
        let dates: Date32Array = days.into_iter().map(|d| d.and_then(|d| d.ok())).collect();
        return Ok(Some(Arc::new(dates)));
    }
    let mut b = StringBuilder::with_capacity(days.len(), days.len() * 10);
    for (d, v) in days.iter().zip(values.iter()) {
        match (d, v) {
            (Some(Ok(d)), _) => match crate::model::Date(*d).iso_bytes() {
                Some(iso) => b.append_value(String::from_utf8_lossy(&iso)),
                None => b.append_value(format!("timestamp out of range: {d} days")),
            },
            (Some(Err(())), Some(v)) => b.append_value(format!("timestamp out of range: {v}")),
            _ => b.append_null(),
        }
    }
    Ok(Some(Arc::new(b.finish())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::columns::col;
    use arrow_array::{Date64Array, TimestampMicrosecondArray, TimestampNanosecondArray, TimestampSecondArray};

    fn days(a: ArrayRef) -> Vec<Option<i32>> {
        let d = calendar_dates(&a).unwrap().unwrap();
        d.as_primitive::<arrow_array::types::Date32Type>().iter().collect()
    }

    /// 2025-03-04 03:30 UTC is 3 March in New York, 4 March in UTC and
    /// +05:30; a summer instant uses daylight time (UTC-4).
    #[test]
    fn a_timestamp_is_its_date_in_its_own_zone() {
        let mar4 = crate::model::Date::from_ymd(2025, 3, 4).unwrap().0;
        let at = 1_741_059_000i64; // 2025-03-04T03:30:00Z
        let summer = 1_751_341_200i64; // 2025-07-01T03:40:00Z: 23:40 on 30 June in New York (EDT)
        let jul1 = crate::model::Date::from_ymd(2025, 7, 1).unwrap().0;
        let us = |tz: Option<&str>| -> ArrayRef {
            Arc::new(TimestampMicrosecondArray::from(vec![Some(at * 1_000_000), None, Some(summer * 1_000_000)]).with_timezone_opt(tz))
        };
        assert_eq!(days(us(None)), vec![Some(mar4), None, Some(jul1)]);
        assert_eq!(days(us(Some("UTC"))), vec![Some(mar4), None, Some(jul1)]);
        assert_eq!(days(us(Some("+00:00"))), vec![Some(mar4), None, Some(jul1)]);
        assert_eq!(days(us(Some("utc"))), vec![Some(mar4), None, Some(jul1)]);
        assert_eq!(days(us(Some("Etc/UTC"))), vec![Some(mar4), None, Some(jul1)]);
        assert_eq!(days(us(Some("America/New_York"))), vec![Some(mar4 - 1), None, Some(jul1 - 1)]);
        assert_eq!(days(us(Some("+05:30"))), vec![Some(mar4), None, Some(jul1)]);
        assert_eq!(days(us(Some("-0400"))), vec![Some(mar4 - 1), None, Some(jul1 - 1)]);
        // Every unit; before 1970 rounds down, not toward zero.
        let s: ArrayRef = Arc::new(TimestampSecondArray::from(vec![at, -1]).with_timezone("UTC"));
        assert_eq!(days(s), vec![Some(mar4), Some(-1)]);
        let ns: ArrayRef = Arc::new(TimestampNanosecondArray::from(vec![at * 1_000_000_000]));
        assert_eq!(days(ns), vec![Some(mar4)]);
        let d64: ArrayRef = Arc::new(Date64Array::from(vec![at * 1000]));
        assert_eq!(days(d64), vec![Some(mar4)]);
        // An unknown zone is an error; a date past Date32 is text, not a null.
        assert!(calendar_dates(&us(Some("Mars/Olympus"))).is_err());
        let far: ArrayRef = Arc::new(TimestampSecondArray::from(vec![Some(i64::MAX), None, Some(at)]));
        let t = calendar_dates(&far).unwrap().unwrap();
        let t = t.as_string::<i32>();
        assert!(t.value(0).starts_with("timestamp out of range") && t.is_null(1) && t.value(2) == "2025-03-04");
    }

    #[test]
    fn nested_and_non_value_types_are_refused() {
        let list = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
        assert_eq!(type_name(&list), "list<string>");
        assert!(refusal(col::HCPCS, &list).is_some());
        assert!(refusal(col::DX1, &list).is_some());
        let st = DataType::Struct(vec![Field::new("code", DataType::Utf8, true)].into());
        assert_eq!(type_name(&st), "struct<code: string>");
        assert!(refusal(col::PERSON_ID, &st).is_some());
        assert!(refusal(col::HCPCS, &DataType::Boolean).is_some());
        let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        assert_eq!(type_name(&ts), "timestamp[us, tz=UTC]");
        assert!(refusal(col::UNITS, &ts).is_some());
        assert!(refusal(col::LINE_START, &ts).is_none());
        let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        assert!(refusal(col::HCPCS, &dict).is_none());
        for ok in [DataType::Utf8View, DataType::LargeUtf8, DataType::Decimal128(10, 2), DataType::Int64, DataType::Null] {
            assert!(refusal(col::UNITS, &ok).is_none(), "{ok}");
        }
    }
}
