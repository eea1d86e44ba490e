//! The audit policy: code tables with effective dates, drug and dosing
//! parameters, payer patterns, rule switches. Data, not code: the default is
//! embedded from `policy/default.toml` and `--policy FILE` replaces it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::date::Date;
use crate::error::{Error, Result};
use crate::normalize::{normalize_dx, normalize_hcpcs};
use crate::rules::{RULES, Severity};
use crate::util::{FastMap, FastSet};

pub const DEFAULT_POLICY: &str = include_str!("../policy/default.toml");

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    pub policy: PolicyHeader,
    #[serde(default)]
    pub payer_program: Vec<PayerPattern>,
    #[serde(default)]
    pub payer_defaults: PayerDefaults,
    pub drug: Vec<Drug>,
    pub dosing: BTreeMap<String, Dosing>,
    pub wastage: Wastage,
    pub medicare: Medicare,
    pub home_infusion: HomeInfusion,
    pub code: Vec<CodeEntry>,
    #[serde(default)]
    pub rules: BTreeMap<String, RuleSetting>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyHeader {
    pub name: String,
    pub version: String,
    pub catalogue_version: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PayerPattern {
    pub contains: Vec<String>,
    pub program: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PayerDefaults {
    pub otherwise: String,
}

impl Default for PayerDefaults {
    fn default() -> Self {
        PayerDefaults { otherwise: "commercial".into() }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Drug {
    pub code: String,
    pub name: String,
    pub family: String,
    pub allowed_doses: Vec<f64>,
    #[serde(default)]
    pub ndc: Vec<String>,
    #[serde(default)]
    pub premedication_billed: bool,
    #[serde(default)]
    pub wastage_modifiers: bool,
    #[serde(default)]
    pub source: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Dosing {
    pub initiation_code: String,
    pub initiation_dose: f64,
    /// Dose of the second half when it differs from the first (Briumvi: 150 then 450).
    pub initiation_second_dose: Option<f64>,
    pub pair_min_days: i32,
    pub pair_max_days: i32,
    pub pair_search_days: i32,
    pub min_interval_days: i32,
    pub max_interval_days: i32,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Wastage {
    pub programs: Vec<String>,
    pub modifiers: Vec<String>,
    pub required_from: Option<Date>,
}

/// Payer programs that are Medicare fee-for-service (no S-codes).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Medicare {
    pub programs: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HomeInfusion {
    pub place_of_service: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CodeEntry {
    pub code: String,
    pub system: String,
    #[serde(default)]
    pub groups: Vec<String>,
    pub valid_from: Option<Date>,
    pub valid_to: Option<Date>,
    pub daily_max: Option<f64>,
    #[serde(default)]
    pub home_only: bool,
    #[serde(default = "yes")]
    pub medicare_payable: bool,
    #[serde(default)]
    pub included_in: Vec<String>,
    #[serde(default)]
    pub addon_of: Vec<String>,
    #[serde(default)]
    pub note: String,
    #[serde(default)]
    pub source: String,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSetting {
    #[serde(default = "yes")]
    pub enabled: bool,
    pub severity: Option<Severity>,
}

/// A policy compiled for lookups. Codes are stored normalized: HCPCS trimmed
/// and upper-cased, ICD-10-CM without the dot.
#[derive(Debug, Clone)]
pub struct Policy {
    pub file: PolicyFile,
    pub drugs: FastMap<String, Drug>,
    pub hcpcs: FastMap<String, CodeEntry>,
    pub icd: FastMap<String, CodeEntry>,
    /// Every HCPCS code any rule reads (drugs and the code table).
    pub policy_codes: FastSet<String>,
    /// The same codes as bytes, for the per-row scope check.
    pub policy_codes_upper: Vec<Vec<u8>>,
    pub enabled: FastMap<&'static str, Severity>,
    /// sha-less fingerprint of the policy text, for the run id.
    pub fingerprint: u64,
    pub source: String,
}

impl Policy {
    pub fn default_policy() -> Result<Policy> {
        Policy::from_toml(DEFAULT_POLICY, "embedded default")
    }

    pub fn load(path: &Path) -> Result<Policy> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Config(format!("{}: cannot read policy file: {e}", path.display())))?;
        Policy::from_toml(&text, &path.display().to_string())
    }

    pub fn from_toml(text: &str, source: &str) -> Result<Policy> {
        let mut file: PolicyFile =
            toml::from_str(text).map_err(|e| Error::Config(format!("{source}: invalid policy: {}", one_line(&e.to_string()))))?;
        for p in &mut file.payer_program {
            p.contains.iter_mut().for_each(|c| *c = c.to_ascii_lowercase());
        }
        // Codes in comparison form once, so per-patient code never normalizes.
        for d in &mut file.drug {
            d.code = normalize_hcpcs(&d.code);
        }
        for d in file.dosing.values_mut() {
            d.initiation_code = normalize_hcpcs(&d.initiation_code);
        }
        let mut drugs = FastMap::default();
        for d in &file.drug {
            let mut d = d.clone();
            d.code = normalize_hcpcs(&d.code);
            d.ndc = d.ndc.iter().map(|n| n.chars().filter(|c| c.is_ascii_digit()).collect()).collect();
            if !file.dosing.contains_key(&d.family) {
                return Err(Error::Config(format!(
                    "{source}: drug {} names family {:?} with no [dosing.{}] table",
                    d.code, d.family, d.family
                )));
            }
            drugs.insert(d.code.clone(), d);
        }
        let (mut hcpcs, mut icd) = (FastMap::default(), FastMap::default());
        for c in &file.code {
            let mut c = c.clone();
            match c.system.as_str() {
                "hcpcs" => {
                    c.code = normalize_hcpcs(&c.code);
                    c.included_in = c.included_in.iter().map(|x| normalize_hcpcs(x)).collect();
                    c.addon_of = c.addon_of.iter().map(|x| normalize_hcpcs(x)).collect();
                    hcpcs.insert(c.code.clone(), c);
                }
                "icd10cm" => {
                    c.code = normalize_dx(&c.code);
                    icd.insert(c.code.clone(), c);
                }
                other => return Err(Error::Config(format!("{source}: code {}: unknown system {other:?} (hcpcs or icd10cm)", c.code))),
            }
        }
        let mut enabled = FastMap::default();
        for id in file.rules.keys() {
            if !RULES.iter().any(|r| r.id == id) {
                return Err(Error::Config(format!("{source}: [rules.{id}] is not a rule of catalogue v1 (see `claims-audit rules`)")));
            }
        }
        for r in RULES {
            let setting = file.rules.get(r.id);
            if setting.is_none_or(|s| s.enabled) {
                enabled.insert(r.id, setting.and_then(|s| s.severity).unwrap_or(r.severity));
            }
        }
        let policy_codes: FastSet<String> = drugs.keys().chain(hcpcs.keys()).cloned().collect();
        let mut policy_codes_upper: Vec<Vec<u8>> = policy_codes.iter().map(|c| c.as_bytes().to_vec()).collect();
        policy_codes_upper.sort();
        Ok(Policy {
            fingerprint: crate::util::fnv1a(text.as_bytes()),
            source: source.to_string(),
            file,
            drugs,
            hcpcs,
            icd,
            policy_codes,
            policy_codes_upper,
            enabled,
        })
    }

    pub fn name(&self) -> &str {
        &self.file.policy.name
    }

    pub fn version(&self) -> &str {
        &self.file.policy.version
    }

    /// `name@version`, stamped on every finding as `rule_version`.
    pub fn rule_version(&self) -> String {
        format!("{}@{}", self.name(), self.version())
    }

    pub fn in_group(&self, code: &str, group: &str) -> bool {
        self.hcpcs.get(code).is_some_and(|c| c.groups.iter().any(|g| g == group))
    }

    pub fn dx_in_group(&self, dx: &str, group: &str) -> bool {
        self.icd.get(dx).is_some_and(|c| c.groups.iter().any(|g| g == group))
    }

    pub fn dx_valid_on(&self, dx: &str, d: Date) -> bool {
        self.icd.get(dx).is_none_or(|c| c.valid_from.is_none_or(|f| d >= f) && c.valid_to.is_none_or(|t| d <= t))
    }

    /// Whether a line with this code is read at all: policy codes, and every
    /// J-code (PER_DIEM_WITHOUT_DRUG looks for any J-code that day).
    pub fn in_scope(&self, code: &str) -> bool {
        code.starts_with('J') || self.policy_codes.contains(code)
    }

    /// Payer program from payer/plan text.
    pub fn payer_program(&self, text: &str) -> String {
        self.payer_program_lower(&text.to_ascii_lowercase()).to_string()
    }

    /// The program for a line's payer, plan and claim type (trimmed,
    /// non-empty ones joined by a space, as `payer_program` reads them).
    /// Runs per in-scope line, so it joins into a stack buffer.
    pub fn payer_program_of(&self, parts: &[Option<&str>]) -> &str {
        let mut buf = [0u8; 256];
        let mut n = 0;
        for p in parts.iter().flatten().map(|p| p.trim()).filter(|p| !p.is_empty()) {
            let sep = usize::from(n > 0);
            if n + sep + p.len() > buf.len() {
                let text = parts.iter().flatten().map(|p| p.trim()).filter(|p| !p.is_empty()).collect::<Vec<_>>().join(" ");
                return self.payer_program_lower(&text.to_ascii_lowercase());
            }
            if sep == 1 {
                buf[n] = b' ';
            }
            buf[n + sep..n + sep + p.len()].copy_from_slice(p.as_bytes());
            n += sep + p.len();
        }
        buf[..n].make_ascii_lowercase();
        // Whole `str`s and spaces, lower-cased as ASCII: still UTF-8.
        self.payer_program_lower(std::str::from_utf8(&buf[..n]).unwrap_or_default())
    }

    fn payer_program_lower(&self, lower: &str) -> &str {
        for p in &self.file.payer_program {
            if p.contains.iter().any(|c| lower.contains(c.as_str())) {
                return &p.program;
            }
        }
        &self.file.payer_defaults.otherwise
    }

    pub fn severity(&self, rule: &str) -> Option<Severity> {
        self.enabled.get(rule).copied()
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_loads() {
        let p = Policy::default_policy().unwrap();
        assert!(p.in_scope("J2350") && p.in_scope("S9379") && p.in_scope("J9999"));
        assert!(!p.in_scope("99213"));
        assert!(p.dx_in_group("G35C2", "off_label_diagnosis"));
        assert_eq!(p.enabled.len(), RULES.len());
        assert_eq!(p.payer_program("Acme Medicare Advantage HMO"), "medicare_advantage");
        assert_eq!(p.payer_program("MEDICARE PART B"), "medicare_ffs");
        assert_eq!(p.payer_program("State Medicaid"), "medicaid");
        assert_eq!(p.payer_program("Aetna PPO"), "commercial");
        assert_eq!(p.payer_program_of(&[Some(" Acme Medicare "), None, Some("Advantage HMO")]), "medicare_advantage");
        assert_eq!(p.payer_program_of(&[Some(""), Some("MEDICARE"), Some("part b")]), "medicare_ffs");
        assert_eq!(p.payer_program_of(&[Some(&"x".repeat(300)), Some("medicaid")]), "medicaid");
    }

    #[test]
    fn unknown_rule_is_a_config_error() {
        let text = format!("{DEFAULT_POLICY}\n[rules.NOT_A_RULE]\nseverity = \"info\"\n");
        assert!(matches!(Policy::from_toml(&text, "t"), Err(Error::Config(_))));
    }
}
