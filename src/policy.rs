//! The audit policy: code tables with effective dates, drug and dosing
//! parameters, payer patterns, rule switches. Data, not code: the default is
//! embedded from `policy/default.toml` and `--policy FILE` replaces it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::catalogue::rule_index;
use crate::model::codes::{normalize_dx, normalize_hcpcs, normalize_ndc, normalize_revenue};
use crate::model::codeset::CodeSet;
use crate::model::{CATALOGUE, CATALOGUE_VERSION, Date, Severity};
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
    #[serde(default)]
    pub institutional: Institutional,
    #[serde(default)]
    pub pharmacy: Pharmacy,
    pub code: Vec<CodeEntry>,
    #[serde(default)]
    pub rules: BTreeMap<String, RuleSetting>,
    #[serde(default)]
    pub codeset: CodesetSetting,
}

/// ICD-10-CM release files (CMS order files, plain or zip, or folders of
/// them) layered on the embedded code set; relative to the policy file.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CodesetSetting {
    #[serde(default)]
    pub files: Vec<String>,
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
    pub ndc: Vec<NdcEntry>,
    #[serde(default)]
    pub premedication_billed: bool,
    #[serde(default)]
    pub wastage_modifiers: bool,
    #[serde(default)]
    pub source: String,
}

/// An NDC of a drug: a bare code (NDC_MISMATCH only, as in catalogue v1
/// policies) or a product whose `mg_per_unit` turns a pharmacy quantity into
/// a dose.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum NdcEntry {
    Code(String),
    Product(NdcProduct),
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NdcProduct {
    pub code: String,
    /// mg of drug per NCPDP billing unit (per mL for a solution).
    pub mg_per_unit: Option<f64>,
    #[serde(default)]
    pub package: String,
    #[serde(default)]
    pub source: String,
}

impl NdcEntry {
    pub fn code(&self) -> &str {
        match self {
            NdcEntry::Code(c) => c,
            NdcEntry::Product(p) => &p.code,
        }
    }

    pub fn mg_per_unit(&self) -> Option<f64> {
        match self {
            NdcEntry::Code(_) => None,
            NdcEntry::Product(p) => p.mg_per_unit,
        }
    }
}

/// A policy NDC as the pharmacy reader and the episode builder see it.
#[derive(Debug, Clone)]
pub struct NdcInfo {
    /// The drug's HCPCS code (the administration it supplies).
    pub drug: String,
    pub mg_per_unit: f64,
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
    /// Type-of-bill prefixes (facility type and classification, without the
    /// leading 0) that are home: 32x, 33x, 34x home health.
    #[serde(default = "home_bill_types")]
    pub bill_types: Vec<String>,
}

fn home_bill_types() -> Vec<String> {
    vec!["32".into(), "33".into(), "34".into()]
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Institutional {
    /// Revenue code ranges (`"0250-0259"`, or one code) that are pharmacy:
    /// a line there without HCPCS may carry the premedication.
    #[serde(default = "pharmacy_revenue")]
    pub pharmacy_revenue_codes: Vec<String>,
}

impl Default for Institutional {
    fn default() -> Self {
        Institutional { pharmacy_revenue_codes: pharmacy_revenue() }
    }
}

fn pharmacy_revenue() -> Vec<String> {
    vec!["0250-0259".into(), "0630-0639".into()]
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Pharmacy {
    /// How long before an administration a dispense can supply it.
    #[serde(default = "dispense_window")]
    pub dispense_window_days: i32,
}

impl Default for Pharmacy {
    fn default() -> Self {
        Pharmacy { dispense_window_days: dispense_window() }
    }
}

fn dispense_window() -> i32 {
    30
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
    /// What `amount_at_stake` counts for this rule's findings (RULES.md v3,
    /// "Money at stake"); a rule without one is priced by its line.
    pub at_stake: Option<Basis>,
}

/// The money a finding puts in question (RULES.md v3, "Money at stake").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// The flagged line's paid amount (else allowed, else charge).
    Line,
    /// The dose's payment: the flagged drug line's, or for a
    /// pharmacy-supplied dose the dispense's paid amount net of reversals.
    Dose,
    /// UNITS_OVER_DAILY_MAX: the line's payment times the share of units
    /// over the daily maximum.
    Excess,
    /// CROSS_BENEFIT_DUPLICATE: the smaller of the two benefits' payments.
    SmallerPayment,
    /// Nothing overpaid: a clinical signal (0).
    None,
}

impl Basis {
    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Line => "line",
            Basis::Dose => "dose",
            Basis::Excess => "excess",
            Basis::SmallerPayment => "smaller_payment",
            Basis::None => "none",
        }
    }

    /// Whether rule `id` can price its findings this way. `line` and `none`
    /// suit every rule, so a rule added to the catalogue (DX_CODE_INVALID)
    /// needs no entry here; the others need what only some rules see.
    pub fn suits(self, id: &str) -> bool {
        const DOSE: &[&str] =
            &["DOSE_UNEXPECTED", "INITIAL_PAIR_INTERVAL", "INITIAL_PAIR_INCOMPLETE", "INTERVAL_TOO_SHORT", "INTERVAL_OVERDUE"];
        match self {
            Basis::Line | Basis::None => true,
            Basis::Dose => DOSE.contains(&id),
            Basis::Excess => id == "UNITS_OVER_DAILY_MAX",
            Basis::SmallerPayment => id == "CROSS_BENEFIT_DUPLICATE",
        }
    }
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
    /// The same codes for the per-row scope check: up to 7 bytes as sorted
    /// `code_key`s (one binary search a row), longer ones as upper-case bytes.
    pub policy_code_keys: Vec<u64>,
    /// One bit per `key_bit` of those keys: most rows' codes (office visits,
    /// labs) miss it and skip the search.
    pub policy_code_bits: [u64; 4],
    pub policy_codes_long: Vec<Vec<u8>>,
    /// 11-digit NDC -> its drug and strength, for NDCs with `mg_per_unit`:
    /// the scope of pharmacy extracts.
    pub ndc_products: FastMap<String, NdcInfo>,
    /// Pharmacy revenue code ranges, inclusive, as numbers.
    pub pharmacy_revenue: Vec<(u16, u16)>,
    /// Each policy code's role on a person's timeline.
    pub roles: FastMap<String, &'static str>,
    /// Each catalogue rule's severity, by catalogue index; None when the
    /// policy disables it.
    severity_by_rule: Vec<Option<Severity>>,
    /// Each catalogue rule's money-at-stake basis, by catalogue index.
    basis_by_rule: Vec<Basis>,
    /// sha-less fingerprint of the policy text, for the run id.
    pub fingerprint: u64,
    pub source: String,
    /// The policy as written (what a distributed job ships to its workers).
    pub text: String,
    /// The ICD-10-CM code set with user releases layered on; None: the
    /// embedded one alone.
    codeset: Option<std::sync::Arc<CodeSet>>,
}

impl Policy {
    pub fn default_policy() -> Result<Policy> {
        Policy::from_toml(DEFAULT_POLICY, "embedded default")
    }

    pub fn load(path: &Path) -> Result<Policy> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Config(format!("{}: cannot read policy file: {e}", path.display())))?;
        let mut p = Policy::from_toml(&text, &path.display().to_string())?;
        let base = path.parent().unwrap_or(Path::new("."));
        for f in p.file.codeset.files.clone() {
            p.add_codesets(&base.join(f))?;
        }
        Ok(p)
    }

    /// The ICD-10-CM code set the rules judge diagnoses against.
    pub fn codeset(&self) -> &CodeSet {
        self.codeset.as_deref().unwrap_or_else(|| CodeSet::embedded())
    }

    /// The policy's `icd10cm` codes whose dates disagree with the code set
    /// (`rules --check`): one line each, in code order. The policy's open
    /// ends mean "from the code set's first date" and "still billable".
    pub fn check_codeset(&self) -> Vec<String> {
        use crate::model::codes::display_dx;
        let cs = self.codeset();
        let mut codes: Vec<&CodeEntry> = self.icd.values().collect();
        codes.sort_by(|a, b| a.code.cmp(&b.code));
        let show = |d: Option<Date>| d.map_or("open".to_string(), |d| d.to_string());
        let mut out = Vec::new();
        for c in codes {
            let ranges = cs.billable_ranges(&c.code);
            let (Some(first), Some(last)) = (ranges.first(), ranges.last()) else {
                out.push(format!("{}: in no ICD-10-CM release as a billable code", display_dx(&c.code)));
                continue;
            };
            let from = (first.from > cs.first_date()).then_some(first.from);
            let to = (last.to < cs.last_date()).then_some(last.to);
            let gaps = ranges.len() > 1;
            if c.valid_from != from || c.valid_to != to || gaps {
                out.push(format!(
                    "{}: policy valid {}, code set: billable {}",
                    display_dx(&c.code),
                    match (c.valid_from, c.valid_to) {
                        (None, Some(t)) => format!("to {t}"),
                        (f, t) => format!("from {} to {}", show(f), show(t)),
                    },
                    ranges
                        .iter()
                        .map(|s| if s.from == cs.first_date() { format!("to {}", s.to) } else { format!("{} to {}", s.from, s.to) })
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        out
    }

    /// Layers the release files of `path` (a folder or one file) on the
    /// code set (`--codesets DIR`, `[codeset] files`).
    pub fn add_codesets(&mut self, path: &Path) -> Result<()> {
        let files = crate::codeset_files::read_dir(path)?;
        let t = crate::codeset_files::layer(self.codeset(), &files)?;
        self.fingerprint ^= crate::util::fnv1a(format!("{:?}", t.releases()).as_bytes());
        self.codeset = Some(std::sync::Arc::new(t));
        Ok(())
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
        let cv = file.policy.catalogue_version.trim();
        if cv.parse::<u32>().map_or(true, |v| v == 0 || v > CATALOGUE_VERSION) {
            return Err(Error::Config(format!(
                "{source}: catalogue_version {cv:?} is not one this build implements (1 to {CATALOGUE_VERSION})"
            )));
        }
        let mut drugs = FastMap::default();
        let mut ndc_products = FastMap::default();
        for d in &mut file.drug {
            for n in &mut d.ndc {
                let Some(code) = normalize_ndc(n.code()) else {
                    return Err(Error::Config(format!(
                        "{source}: drug {}: NDC {:?} is not a 5-4-2 or dashed 10-digit NDC",
                        d.code,
                        n.code()
                    )));
                };
                match n {
                    NdcEntry::Code(c) => *c = code.to_string(),
                    NdcEntry::Product(p) => p.code = code.to_string(),
                }
                if let Some(mg) = n.mg_per_unit() {
                    if !(mg > 0.0 && mg.is_finite()) {
                        return Err(Error::Config(format!("{source}: drug {}: NDC {code}: mg_per_unit must be positive", d.code)));
                    }
                    let info = NdcInfo { drug: d.code.clone(), mg_per_unit: mg };
                    if let Some(other) = ndc_products.insert(code.to_string(), info)
                        && other.drug != d.code
                    {
                        return Err(Error::Config(format!("{source}: NDC {code} is listed under both {} and {}", other.drug, d.code)));
                    }
                }
            }
        }
        for d in &file.drug {
            let d = d.clone();
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
        for (id, setting) in &file.rules {
            if !CATALOGUE.iter().any(|r| r.id == id) {
                return Err(Error::Config(format!(
                    "{source}: [rules.{id}] is not a rule of catalogue v{CATALOGUE_VERSION} (see `claims-audit rules`)"
                )));
            }
            if let Some(b) = setting.at_stake
                && !b.suits(id)
            {
                return Err(Error::Config(format!(
                    "{source}: [rules.{id}] at_stake = {:?} is not a basis {id} can price (line or none)",
                    b.as_str()
                )));
            }
        }
        let mut pharmacy_revenue = Vec::new();
        for r in &file.institutional.pharmacy_revenue_codes {
            let (a, b) = r.split_once('-').unwrap_or((r, r));
            let num = |x: &str| normalize_revenue(x).and_then(|t| t.parse::<u16>().ok());
            match (num(a), num(b)) {
                (Some(a), Some(b)) if a <= b => pharmacy_revenue.push((a, b)),
                _ => return Err(Error::Config(format!("{source}: pharmacy revenue code range {r:?} is not CODE or CODE-CODE"))),
            }
        }
        let severity_by_rule = CATALOGUE
            .iter()
            .map(|r| {
                let setting = file.rules.get(r.id);
                setting.is_none_or(|s| s.enabled).then(|| setting.and_then(|s| s.severity).unwrap_or(r.severity))
            })
            .collect();
        let basis_by_rule = CATALOGUE.iter().map(|r| file.rules.get(r.id).and_then(|s| s.at_stake).unwrap_or(Basis::Line)).collect();
        let policy_codes: FastSet<String> = drugs.keys().chain(hcpcs.keys()).cloned().collect();
        let roles = policy_codes.iter().map(|c| (c.clone(), role(&drugs, &hcpcs, c))).collect();
        let mut policy_code_keys: Vec<u64> = policy_codes.iter().filter_map(|c| code_key(c.as_bytes())).collect();
        policy_code_keys.sort_unstable();
        let mut policy_code_bits = [0u64; 4];
        for &k in &policy_code_keys {
            let b = key_bit(k);
            policy_code_bits[b / 64] |= 1 << (b % 64);
        }
        let mut policy_codes_long: Vec<Vec<u8>> =
            policy_codes.iter().filter(|c| code_key(c.as_bytes()).is_none()).map(|c| c.to_ascii_uppercase().into_bytes()).collect();
        policy_codes_long.sort();
        Ok(Policy {
            fingerprint: crate::util::fnv1a(text.as_bytes()),
            text: text.to_string(),
            source: source.to_string(),
            codeset: None,
            file,
            drugs,
            hcpcs,
            icd,
            policy_codes,
            policy_code_keys,
            policy_code_bits,
            policy_codes_long,
            roles,
            ndc_products,
            pharmacy_revenue,
            severity_by_rule,
            basis_by_rule,
        })
    }

    pub fn name(&self) -> &str {
        &self.file.policy.name
    }

    pub fn version(&self) -> &str {
        &self.file.policy.version
    }

    /// `name@version/catalogue-vN`, stamped on every finding as
    /// `rule_version`: the policy and the catalogue version it was written for.
    pub fn rule_version(&self) -> String {
        format!("{}@{}/catalogue-v{}", self.name(), self.version(), self.file.policy.catalogue_version.trim())
    }

    /// Whether a normalized 11-digit NDC is a policy product with a strength.
    pub fn ndc_product(&self, ndc: &str) -> Option<&NdcInfo> {
        self.ndc_products.get(ndc)
    }

    /// Whether a revenue code (any accepted form) is a pharmacy revenue code.
    pub fn is_pharmacy_revenue(&self, code: &str) -> bool {
        normalize_revenue(code)
            .and_then(|t| t.parse::<u16>().ok())
            .is_some_and(|v| self.pharmacy_revenue.iter().any(|&(a, b)| (a..=b).contains(&v)))
    }

    /// Whether a normalized type of bill (`341`) is a home setting.
    pub fn bill_type_is_home(&self, bill_type: &str) -> bool {
        self.file.home_infusion.bill_types.iter().any(|p| bill_type.starts_with(p.as_str()))
    }

    /// A policy code's role on a timeline (`other` for codes outside the policy).
    pub fn role_of(&self, code: &str) -> &'static str {
        self.roles.get(code).copied().unwrap_or("other")
    }

    /// Index of a drug family among the policy's dosing tables (stable order).
    pub fn family_index(&self, family: &str) -> u16 {
        self.file.dosing.keys().position(|f| f == family).unwrap_or(0) as u16
    }

    /// The family of an index from `family_index`.
    pub fn family_name(&self, index: u16) -> &str {
        self.file.dosing.keys().nth(index as usize).map_or("", |f| f.as_str())
    }

    pub fn dispense_window_days(&self) -> i32 {
        self.file.pharmacy.dispense_window_days
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
        rule_index(rule).and_then(|k| self.severity_at(k))
    }

    /// The money-at-stake basis of the catalogue's rule `k` (`line` when the
    /// policy names none).
    pub fn basis_at(&self, k: usize) -> Basis {
        self.basis_by_rule.get(k).copied().unwrap_or(Basis::Line)
    }

    /// `basis_at` by rule id.
    pub fn basis(&self, rule: &str) -> Basis {
        rule_index(rule).map_or(Basis::Line, |k| self.basis_at(k))
    }

    /// `severity` of the catalogue's rule `k`.
    pub fn severity_at(&self, k: usize) -> Option<Severity> {
        self.severity_by_rule.get(k).copied().flatten()
    }
}

/// drug, per_diem, nursing, premedication or other: a code's role on a timeline.
fn role(drugs: &FastMap<String, Drug>, hcpcs: &FastMap<String, CodeEntry>, code: &str) -> &'static str {
    if drugs.contains_key(code) {
        return "drug";
    }
    let groups = hcpcs.get(code).map(|c| c.groups.as_slice()).unwrap_or_default();
    let has = |g: &str| groups.iter().any(|x| x == g);
    if has("per_diem") {
        "per_diem"
    } else if has("nursing_primary") || has("nursing_addon") {
        "nursing"
    } else if has("steroid_premed") || has("antihistamine_premed") {
        "premedication"
    } else {
        "other"
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A `code_key`'s bit in `Policy::policy_code_bits` (the top byte of a
/// multiplicative hash).
#[inline]
pub fn key_bit(k: u64) -> usize {
    (k.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as usize
}

/// A code of up to 7 bytes as one integer: its length, then its bytes upper-
/// cased. Equal keys mean equal codes, ignoring ASCII case.
pub fn code_key(code: &[u8]) -> Option<u64> {
    if code.len() > 7 {
        return None;
    }
    let mut k = (code.len() as u64) << 56;
    for (i, b) in code.iter().enumerate() {
        k |= u64::from(b.to_ascii_uppercase()) << (48 - 8 * i);
    }
    Some(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scope_check_matches_codes_exactly_ignoring_case() {
        let p = Policy::default_policy().unwrap();
        let scope = |c: &str| crate::ingest::code_in_scope(&p, c.as_bytes());
        for c in &p.policy_codes {
            assert!(scope(c) && scope(&c.to_ascii_lowercase()), "{c}");
            // Near misses: a character short or long, a NUL or a space after it.
            for miss in [&c[..c.len() - 1], &format!("{c}0"), &format!("{c}\0"), &format!("{c} ")] {
                let policy_code = p.policy_codes.iter().any(|x| x.eq_ignore_ascii_case(miss));
                assert_eq!(scope(miss), policy_code || miss.starts_with(['J', 'j']), "{miss:?}");
            }
        }
        assert!(!scope("99213") && !scope("") && !scope("A-very-long-code"));
        assert_eq!(code_key(b"ab"), code_key(b"AB"));
        assert_ne!(code_key(b"AB"), code_key(b"AB\0"));
        assert_eq!(code_key(b"TOOLONG8"), None);
    }

    #[test]
    fn default_policy_loads() {
        let p = Policy::default_policy().unwrap();
        assert!(p.in_scope("J2350") && p.in_scope("S9379") && p.in_scope("J9999"));
        assert!(!p.in_scope("99213"));
        assert!(p.dx_in_group("G35C2", "off_label_diagnosis"));
        assert!(CATALOGUE.iter().all(|r| p.severity(r.id).is_some()));
        assert_eq!(p.ndc_product("50242015001").map(|n| (n.drug.as_str(), n.mg_per_unit)), Some(("J2350", 30.0)));
        assert!(p.is_pharmacy_revenue("250") && p.is_pharmacy_revenue("0636") && !p.is_pharmacy_revenue("0270"));
        assert!(p.bill_type_is_home("341") && p.bill_type_is_home("321") && !p.bill_type_is_home("131"));
        assert_eq!(p.dispense_window_days(), 30);
        assert_eq!(p.rule_version(), "ocrelizumab-home-infusion@2026.12.0/catalogue-v3");
        assert_eq!(p.payer_program("Acme Medicare Advantage HMO"), "medicare_advantage");
        assert_eq!(p.payer_program("MEDICARE PART B"), "medicare_ffs");
        assert_eq!(p.payer_program("State Medicaid"), "medicaid");
        assert_eq!(p.payer_program("Aetna PPO"), "commercial");
        assert_eq!(p.payer_program_of(&[Some(" Acme Medicare "), None, Some("Advantage HMO")]), "medicare_advantage");
        assert_eq!(p.payer_program_of(&[Some(""), Some("MEDICARE"), Some("part b")]), "medicare_ffs");
        assert_eq!(p.payer_program_of(&[Some(&"x".repeat(300)), Some("medicaid")]), "medicaid");
    }

    #[test]
    fn catalogue_v1_policy_with_bare_ndcs_still_loads() {
        let text = DEFAULT_POLICY
            .replace("catalogue_version = \"3\"", "catalogue_version = \"1\"")
            .replace("[[drug.ndc]]\ncode = \"50242-0150-01\"\nmg_per_unit = 30.0", "[[drug.ndc]]\ncode = \"50242-0150-01\"");
        let p = Policy::from_toml(&text, "t").unwrap();
        assert!(p.ndc_products.is_empty());
        assert_eq!(p.drugs["J2350"].ndc[0].code(), "50242015001");
        let newer = DEFAULT_POLICY.replace("catalogue_version = \"3\"", "catalogue_version = \"4\"");
        assert!(matches!(Policy::from_toml(&newer, "t"), Err(Error::Config(_))));
    }

    #[test]
    fn the_default_policys_icd10cm_dates_agree_with_the_code_set() {
        let p = Policy::default_policy().unwrap();
        assert!(p.icd.len() >= 9);
        assert_eq!(p.check_codeset(), Vec::<String>::new());
        let wrong = DEFAULT_POLICY
            .replace("valid_to = \"2025-09-30\"", "valid_to = \"2025-12-31\"")
            .replace("code = \"G35.D\"", "code = \"G35.9\"");
        let bad = Policy::from_toml(&wrong, "t").unwrap().check_codeset();
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert!(bad[0].starts_with("G35: policy valid to 2025-12-31, code set: billable to 2025-09-30"), "{bad:?}");
        assert!(bad[1].starts_with("G35.9: in no ICD-10-CM release"), "{bad:?}");
    }

    #[test]
    fn unknown_rule_is_a_config_error() {
        let text = format!("{DEFAULT_POLICY}\n[rules.NOT_A_RULE]\nseverity = \"info\"\n");
        assert!(matches!(Policy::from_toml(&text, "t"), Err(Error::Config(_))));
    }
}
