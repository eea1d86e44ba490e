//! Canonical input columns (Tuva `medical_claim` and `pharmacy_claim` names)
//! and how a file's header maps onto them: case-insensitive names, plus an
//! optional alias map (`--columns FILE`) from canonical names to an
//! extract's own headers. The header also tells a file's kind: a pharmacy
//! extract has `ndc_code` and `dispensing_date` and no `hcpcs_code`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::model::Presence;

pub const N_DX: usize = 25;
pub const N_MOD: usize = 5;

/// Column slots. Diagnosis and modifier columns occupy ranges.
pub mod col {
    pub const CLAIM_ID: usize = 0;
    pub const CLAIM_LINE_NUMBER: usize = 1;
    pub const PERSON_ID: usize = 2;
    pub const MEMBER_ID: usize = 3;
    pub const LINE_START: usize = 4;
    pub const CLAIM_START: usize = 5;
    pub const LINE_END: usize = 6;
    pub const CLAIM_END: usize = 7;
    pub const HCPCS: usize = 8;
    pub const UNITS: usize = 9;
    pub const POS: usize = 10;
    pub const PAYER: usize = 11;
    pub const PLAN: usize = 12;
    pub const CLAIM_TYPE: usize = 13;
    pub const RENDERING_NPI: usize = 14;
    pub const BILLING_NPI: usize = 15;
    pub const PAID: usize = 16;
    pub const ALLOWED: usize = 17;
    pub const CHARGE: usize = 18;
    pub const NDC: usize = 19;
    pub const BILL_TYPE: usize = 20;
    pub const REVENUE: usize = 21;
    pub const DISPENSING_DATE: usize = 22;
    pub const QUANTITY: usize = 23;
    pub const DAYS_SUPPLY: usize = 24;
    pub const DISPENSING_NPI: usize = 25;
    pub const PRESCRIBING_NPI: usize = 26;
    pub const DX1: usize = 27;
    pub const MOD1: usize = DX1 + super::N_DX;
    pub const COUNT: usize = MOD1 + super::N_MOD;
}

const FIXED: [&str; col::DX1] = [
    "claim_id",
    "claim_line_number",
    "person_id",
    "member_id",
    "claim_line_start_date",
    "claim_start_date",
    "claim_line_end_date",
    "claim_end_date",
    "hcpcs_code",
    "service_unit_quantity",
    "place_of_service_code",
    "payer",
    "plan",
    "claim_type",
    "rendering_npi",
    "billing_npi",
    "paid_amount",
    "allowed_amount",
    "charge_amount",
    "ndc_code",
    "bill_type_code",
    "revenue_center_code",
    "dispensing_date",
    "quantity",
    "days_supply",
    "dispensing_provider_npi",
    "prescribing_provider_npi",
];

/// Canonical name of a slot.
pub fn canonical_name(slot: usize) -> String {
    if slot < col::DX1 {
        FIXED[slot].to_string()
    } else if slot < col::MOD1 {
        format!("diagnosis_code_{}", slot - col::DX1 + 1)
    } else {
        format!("hcpcs_modifier_{}", slot - col::MOD1 + 1)
    }
}

/// Slots a file must have, by kind (person_id may be satisfied by member_id).
const REQUIRED_MEDICAL: &[usize] = &[col::CLAIM_ID, col::CLAIM_LINE_NUMBER, col::LINE_START, col::HCPCS, col::UNITS, col::DX1];
const REQUIRED_PHARMACY: &[usize] = &[col::CLAIM_ID, col::CLAIM_LINE_NUMBER, col::DISPENSING_DATE, col::NDC, col::QUANTITY];

/// What an extract holds: medical claim lines (professional or
/// institutional) or pharmacy claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    Medical,
    Pharmacy,
}

impl FileKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Medical => "medical",
            FileKind::Pharmacy => "pharmacy",
        }
    }
}

/// Canonical name -> the header name to look for in an extract.
#[derive(Debug, Clone, Default)]
pub struct ColumnMap {
    aliases: BTreeMap<String, String>,
}

impl ColumnMap {
    pub fn load(path: &Path) -> Result<ColumnMap> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Config(format!("{}: cannot read column map: {e}", path.display())))?;
        let raw: BTreeMap<String, toml::Value> =
            toml::from_str(&text).map_err(|e| Error::Config(format!("{}: invalid column map: {}", path.display(), e.message())))?;
        let known: Vec<String> = (0..col::COUNT).map(canonical_name).collect();
        let mut aliases = BTreeMap::new();
        for (k, v) in raw {
            let k = k.to_ascii_lowercase();
            if !known.contains(&k) {
                return Err(Error::Config(format!("{}: {k:?} is not a canonical column name", path.display())));
            }
            let Some(v) = v.as_str() else {
                return Err(Error::Config(format!("{}: {k} must map to a header name (a string)", path.display())));
            };
            aliases.insert(k, v.trim().to_ascii_lowercase());
        }
        Ok(ColumnMap { aliases })
    }

    fn header_for(&self, slot: usize) -> String {
        let name = canonical_name(slot);
        self.aliases.get(&name).cloned().unwrap_or(name)
    }

    /// Resolves a header row into slot -> field index and the file's kind.
    /// Fails naming the missing required columns of that kind.
    pub fn resolve<S: AsRef<str>>(&self, path: &Path, header: &[S]) -> Result<Resolved> {
        let norm: Vec<String> =
            header.iter().map(|h| h.as_ref().trim().trim_start_matches('\u{feff}').trim_matches('"').to_ascii_lowercase()).collect();
        // The mapped header, else the canonical name: one map serves a run
        // whose medical and pharmacy extracts name their columns differently.
        let mut idx = [None; col::COUNT];
        for (slot, out) in idx.iter_mut().enumerate() {
            let want = self.header_for(slot);
            let canonical = canonical_name(slot);
            *out = norm.iter().position(|h| *h == want).or_else(|| norm.iter().position(|h| *h == canonical));
        }
        let pharmacy = idx[col::HCPCS].is_none() && idx[col::NDC].is_some() && idx[col::DISPENSING_DATE].is_some();
        let (kind, required) = if pharmacy { (FileKind::Pharmacy, REQUIRED_PHARMACY) } else { (FileKind::Medical, REQUIRED_MEDICAL) };
        let mut missing: Vec<String> = required.iter().filter(|&&s| idx[s].is_none()).map(|&s| self.header_for(s)).collect();
        if idx[col::PERSON_ID].is_none() && idx[col::MEMBER_ID].is_none() {
            missing.insert(0, format!("{} (or {})", self.header_for(col::PERSON_ID), self.header_for(col::MEMBER_ID)));
        }
        if !missing.is_empty() {
            let what = if pharmacy { " of a pharmacy extract" } else { "" };
            return Err(Error::input(path, format!("missing required column(s){what}: {}", missing.join(", "))));
        }
        Ok(Resolved { idx, width: header.len(), kind })
    }
}

/// Where each slot lives in one file's rows.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub idx: [Option<usize>; col::COUNT],
    pub width: usize,
    pub kind: FileKind,
}

impl Resolved {
    pub fn has(&self, slot: usize) -> bool {
        self.idx[slot].is_some()
    }

    /// Which optional inputs this file has, for "not evaluable" accounting.
    pub fn presence(&self) -> Presence {
        Presence {
            payer: self.has(col::PAYER) || self.has(col::PLAN),
            pos: self.has(col::POS),
            modifiers: (0..N_MOD).any(|i| self.has(col::MOD1 + i)),
            ndc: self.has(col::NDC),
            bill_type: self.has(col::BILL_TYPE),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_matching_is_case_insensitive_and_names_missing() {
        let m = ColumnMap::default();
        let h = [
            "CLAIM_ID",
            "claim_line_number",
            "Member_ID",
            "claim_line_start_date",
            "HCPCS_CODE",
            "service_unit_quantity",
            "diagnosis_code_1",
        ];
        let r = m.resolve(Path::new("x.csv"), &h).unwrap();
        assert_eq!(r.idx[col::MEMBER_ID], Some(2));
        assert_eq!(r.idx[col::PERSON_ID], None);
        let err = m.resolve(Path::new("x.csv"), &h[..4]).unwrap_err().to_string();
        assert!(err.contains("hcpcs_code") && err.contains("diagnosis_code_1"), "{err}");
        assert_eq!(r.kind, FileKind::Medical);
    }

    #[test]
    fn pharmacy_header_is_recognised_and_checked() {
        let m = ColumnMap::default();
        let h = ["claim_id", "claim_line_number", "person_id", "dispensing_date", "ndc_code", "quantity", "days_supply"];
        let r = m.resolve(Path::new("rx.csv"), &h).unwrap();
        assert_eq!(r.kind, FileKind::Pharmacy);
        assert_eq!(r.idx[col::QUANTITY], Some(5));
        let err = m.resolve(Path::new("rx.csv"), &h[..5]).unwrap_err().to_string();
        assert_eq!(err, "rx.csv: missing required column(s) of a pharmacy extract: quantity");
    }
}
