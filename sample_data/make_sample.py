#!/usr/bin/env python3
"""Writes the sample extracts: claims.csv (professional claims) and
institutional.csv (UB-04 claims) in Tuva `medical_claim` columns,
pharmacy.csv in Tuva `pharmacy_claim` columns, and ../examples/cclf5/ (the
professional claims in CMS CCLF5 layout). Deterministic; re-run from
sample_data/ after editing. The Parquet twins in
../tests/fixtures/sample_parquet/ are made with `claims-audit convert` (see
README). Only the three CSVs live here, so `claims-audit run sample_data/`
reads each row once."""
import csv
import datetime as dt

HEADER = [
    "claim_id", "claim_line_number", "claim_type", "person_id", "member_id", "payer", "plan",
    "claim_start_date", "claim_end_date", "claim_line_start_date", "claim_line_end_date",
    "place_of_service_code", "hcpcs_code", "hcpcs_modifier_1", "hcpcs_modifier_2",
    "service_unit_quantity", "ndc_code", "rendering_npi", "billing_npi",
    "diagnosis_code_1", "diagnosis_code_2", "diagnosis_code_3",
    "paid_amount", "allowed_amount", "charge_amount",
]
PRICE = {"J2350": 60.0, "J2351": 48.0, "S9379": 150.0, "S9490": 120.0, "99601": 180.0,
         "99602": 90.0, "J2930": 6.5, "J2919": 4.0, "J1200": 2.1, "J2920": 3.2,
         "99213": 92.0, "80053": 11.0, "85025": 8.5, "97110": 31.0, "J1100": 0.4}
PAYERS = {"commercial": ("Aetna", "Aetna Choice POS II"), "mffs": ("Medicare", "Medicare Part B"),
          "ma": ("Humana", "Humana Medicare Advantage PPO"), "medicaid": ("State Medicaid", "Medicaid FFS")}
FY26 = dt.date(2025, 10, 1)
rows = []
claim_seq = [1000]


def ms_dx(day):
    return "G35" if day < FY26 else "G35.A"


def fmt(day, style):
    if style == 1:
        return day.strftime("%Y%m%d")
    if style == 2:
        return day.strftime("%m/%d/%Y")
    return day.isoformat()


def claim(person, day, lines, payer="commercial", dx=None, pos="12", style=0, npi="1large", out=None):
    """One claim; lines are (code, units, extra-dict)."""
    out = rows if out is None else out
    claim_seq[0] += 1
    cid = f"CLM{claim_seq[0]:06d}"
    payer_name, plan = PAYERS[payer]
    dx = dx if dx is not None else [ms_dx(day), "Z79.899"]
    for n, (code, units, extra) in enumerate(lines, start=1):
        d = {h: "" for h in HEADER}
        d.update({
            "claim_id": cid, "claim_line_number": str(n), "claim_type": "professional",
            "person_id": person, "member_id": "M" + person[1:], "payer": payer_name, "plan": plan,
            "claim_start_date": fmt(day, style), "claim_end_date": fmt(day, style),
            "claim_line_start_date": fmt(day, style), "claim_line_end_date": fmt(day, style),
            "place_of_service_code": pos, "hcpcs_code": code, "service_unit_quantity": units,
            "rendering_npi": "1902837465", "billing_npi": "1447382910",
        })
        for i, code_dx in enumerate(dx[:3], start=1):
            d[f"diagnosis_code_{i}"] = code_dx
        base = code.strip().upper()
        if base in ("J2350", "J2351") and payer == "mffs":
            d["hcpcs_modifier_1"] = "JZ"
        if base == "J2350":
            d["ndc_code"] = "50242-0150-01"
        u = float(str(units))
        paid = round(PRICE.get(base, 25.0) * u, 2)
        d.update({"paid_amount": f"{paid:.2f}", "allowed_amount": f"{paid * 1.1:.2f}", "charge_amount": f"{paid * 1.6:.2f}"})
        d.update(extra)
        out.append(d)
    return cid


def infusion(person, day, dose, payer="commercial", steroid="J2930", extra_lines=(), dx=None, drug_extra=None, style=0):
    lines = [("J2350", str(dose), drug_extra or {}), (steroid, "1", {}), ("J1200", "1", {}),
             ("S9379", "1", {}), ("99601", "1", {}), ("99602", "1", {})]
    lines = [l for l in lines if l[0] is not None] + list(extra_lines)
    return claim(person, day, lines, payer=payer, dx=dx, style=style)


D = dt.date
W24 = dt.timedelta(weeks=24)

# P0001: clean on-label IV history: initiation pair, then 600 mg every 24 weeks.
first = D(2025, 1, 6)
infusion("P0001", first, 300)
infusion("P0001", first + dt.timedelta(days=14), 300, style=1)
infusion("P0001", first + W24, 600, style=2)
infusion("P0001", first + 2 * W24, 600)
infusion("P0001", first + 3 * W24, 600)
claim("P0001", D(2025, 3, 12), [("99213", "1", {}), ("80053", "1", {})], pos="11", dx=["G35", "R53.83"])

# P0002: clean subcutaneous (Ocrevus Zunovo) every 24 weeks, office setting.
for k in range(3):
    claim("P0002", D(2025, 4, 7) + k * W24, [("J2351", "920", {}), ("J1100", "20", {})], pos="11")

# P0003: the typical case. History clean; the 2025-11-10 infusion carries G35
# after FY2026 and bills the S9490 steroid per diem beside S9379.
infusion("P0003", D(2025, 5, 26), 600)
claim("P0003", D(2025, 11, 10), [("J2350", "600", {}), ("S9379", "1", {}), ("J2919", "1", {}),
                                  ("S9490", "1", {}), ("99601", "1", {}), ("99602", "1", {})], dx=["G35"])

# P0004: DX_NOT_MS. P0005: DX_OFF_LABEL (non-active SPMS only).
infusion("P0004", D(2025, 12, 1), 600, dx=["R51.9", "G43.909"])
infusion("P0005", D(2025, 12, 2), 600, dx=["G35.C2"])
# P0006: ADDON_WITHOUT_PRIMARY. P0007: UNITS_OVER_DAILY_MAX (99602 x4).
claim("P0006", D(2026, 1, 5), [("J2350", "600", {}), ("J2930", "1", {}), ("S9379", "1", {}), ("99602", "2", {})])
claim("P0007", D(2026, 1, 6), [("J2350", "600", {}), ("J2930", "1", {}), ("S9379", "1", {}), ("99601", "1", {}), ("99602", "4", {})])
# P0008: DUPLICATE_LINE: the steroid billed on a second claim the same day.
infusion("P0008", D(2026, 1, 7), 600)
claim("P0008", D(2026, 1, 7), [("J2930", "1", {})])
# P0009: NDC_MISMATCH (an NDC of another product). P0010: POS_NOT_HOME.
infusion("P0009", D(2026, 1, 8), 600, drug_extra={"ndc_code": "50242-0140-01"})
claim("P0010", D(2026, 1, 9), [("J2350", "600", {}), ("J2930", "1", {}), ("99601", "1", {})], pos="19")
# P0011: Medicare FFS without JW/JZ (WASTAGE_MODIFIER); nursing only, no S-codes.
claim("P0011", D(2026, 1, 12), [("J2350", "600", {"hcpcs_modifier_1": ""}), ("J2930", "1", {}), ("99601", "1", {})], payer="mffs")
# P0012: Medicare FFS billed S9379 (S_CODE_MEDICARE); JZ present.
claim("P0012", D(2026, 1, 13), [("J2350", "600", {}), ("J2930", "1", {}), ("S9379", "1", {}), ("99601", "1", {})], payer="mffs")
# P0013: PER_DIEM_WITHOUT_DRUG: a per diem on a day with no drug.
infusion("P0013", D(2026, 1, 14), 600)
claim("P0013", D(2026, 1, 21), [("S9379", "1", {})])
# P0014: PREMED_NOT_BILLED. P0015: FORMULATION_CONFLICT.
claim("P0014", D(2026, 1, 15), [("J2350", "600", {}), ("J1200", "1", {}), ("S9379", "1", {}), ("99601", "1", {})])
claim("P0015", D(2026, 1, 16), [("J2350", "600", {}), ("J2351", "920", {}), ("J2930", "1", {}), ("S9379", "1", {}), ("99601", "1", {})])
# P0016: DOSE_UNEXPECTED (450 mg).
infusion("P0016", D(2026, 1, 19), 450)
# P0017: INITIAL_PAIR_INTERVAL (second 300 mg on day 28).
infusion("P0017", D(2025, 12, 1), 300)
infusion("P0017", D(2025, 12, 29), 300)
# P0018: INITIAL_PAIR_INCOMPLETE (no second 300 mg dose).
infusion("P0018", D(2026, 2, 2), 300)
# P0019: INTERVAL_TOO_SHORT (100 days). P0020: INTERVAL_OVERDUE (250 days).
infusion("P0019", D(2025, 10, 6), 600)
infusion("P0019", D(2026, 1, 14), 600)
infusion("P0020", D(2025, 3, 3), 600)
infusion("P0020", D(2025, 11, 10), 600)
# P0021: voided and rebilled: original, full reversal, rebill. Clean.
orig = infusion("P0021", D(2026, 2, 9), 600)
claim("P0021", D(2026, 2, 9), [(c, "-" + u, {}) for c, u in
                               [("J2350", "600"), ("J2930", "1"), ("J1200", "1"), ("S9379", "1"), ("99601", "1"), ("99602", "1")]])
infusion("P0021", D(2026, 2, 9), 600)
# P0022: clean, Medicare Advantage, extract quirks: lower-case codes with
# spaces, undotted diagnoses, POS "12.0", units "600.000", 10-digit NDC.
claim("P0022", D(2025, 12, 15), [(" j2350 ", "600.000", {"ndc_code": "50242-150-01"}), ("j2930", "1.0", {}),
                                  ("S9379", "1", {}), ("99601", "1", {})], payer="ma", dx=["g35a"], pos="12.0")
claim("P0022", D(2026, 6, 1), [("J2350", "600", {}), ("J2930", "1", {}), ("S9379", "1", {}), ("99601", "1", {})],
      payer="ma", dx=["G35A"], pos=" 12")

# ---- Pharmacy benefit: the specialty pharmacy dispenses the drug (NCPDP, by
# NDC, quantity in mL: 10 mL = 300 mg); the home-infusion provider bills the
# per diem and nursing on professional claims. Rows for pharmacy.csv.
rx_rows = []
RX_HEADER = ["claim_id", "claim_line_number", "person_id", "member_id", "payer", "plan", "dispensing_date",
             "ndc_code", "quantity", "days_supply", "paid_amount", "allowed_amount",
             "dispensing_provider_npi", "prescribing_provider_npi"]


def dispense(person, day, quantity, ndc="50242-0150-01", payer="commercial"):
    claim_seq[0] += 1
    payer_name, plan = PAYERS[payer]
    try:
        paid = round(1860.0 * float(quantity), 2)
    except ValueError:
        paid = 0.0
    rx_rows.append({"claim_id": f"RX{claim_seq[0]:06d}", "claim_line_number": "1", "person_id": person,
                    "member_id": "M" + person[1:], "payer": payer_name, "plan": plan,
                    "dispensing_date": day.isoformat(), "ndc_code": ndc, "quantity": str(quantity),
                    "days_supply": "-1" if str(quantity).startswith("-") else "1", "paid_amount": f"{paid:.2f}",
                    "allowed_amount": f"{paid * 1.05:.2f}", "dispensing_provider_npi": "1134567892",
                    "prescribing_provider_npi": "1902837465"})


def home_visit(person, day):
    """Per diem, nursing and premedication: the drug came from the pharmacy."""
    return claim(person, day, [("S9379", "1", {}), ("99601", "1", {}), ("99602", "1", {}),
                               ("J2930", "1", {}), ("J1200", "1", {})])


# P0026: clean pharmacy-supplied history: 300 mg + 300 mg 14 days apart, then
# 600 mg 24 weeks after the first dose; each dispensed two days before the visit.
for day, qty in [(D(2025, 9, 3), 10), (D(2025, 9, 17), 10), (D(2026, 2, 18), 20)]:
    dispense("P0026", day - dt.timedelta(days=2), qty, ndc="50242-150-01")
    home_visit("P0026", day)
# P0027: CROSS_BENEFIT_DUPLICATE: dispensed 4 days before the medical J2350.
dispense("P0027", D(2026, 1, 26), 20)
infusion("P0027", D(2026, 1, 30), 600)
# P0028: two pharmacy-supplied 600 mg doses 67 days apart: INTERVAL_TOO_SHORT
# on the second visit's 99601 line.
for day in [D(2025, 11, 3), D(2026, 1, 9)]:
    dispense("P0028", day - dt.timedelta(days=2), 20, ndc="50242015001")
    home_visit("P0028", day)
# P0029: a reversed dispense, and one 60 days before the medical infusion:
# neither is a cross-benefit duplicate; the early one supplies nothing.
dispense("P0029", D(2026, 2, 2), 20)
dispense("P0029", D(2026, 2, 2), -20)
dispense("P0029", D(2025, 12, 7), 20)
infusion("P0029", D(2026, 2, 5), 600)
# Out of scope (another drug's NDC) and one damaged row (quantity).
dispense("P1001", D(2025, 6, 1), 30, ndc="00002-1433-80")
dispense("P0026", D(2025, 10, 1), "ten")

# ---- Institutional claims (UB-04): type of bill, revenue codes, no place of
# service, and revenue-code-only lines without HCPCS. Rows for institutional.csv.
inst_rows = []
REV = {"J2350": "0636", "J2930": "0636", "J1200": "0636", "S9379": "0260", "99601": "0551", "99602": "0551"}


def inst_claim(person, day, lines, bill_type):
    """lines: (code or "", units, revenue code or None = by code)."""
    extra = [(code, units, {"revenue_center_code": rev or REV.get(code, "0250"), "bill_type_code": bill_type,
                            "claim_type": "institutional", "rendering_npi": ""})
             for code, units, rev in lines]
    return claim(person, day, extra, pos="", out=inst_rows)


# P0023: home health (type of bill 0341, no POS); the steroid under revenue
# code 0250 without HCPCS; supplies and room lines without HCPCS. Clean.
inst_claim("P0023", D(2026, 2, 16), [("J2350", "600", None), ("", "1", "0250"), ("J1200", "1", None),
                                     ("S9379", "1", None), ("99601", "1", None), ("99602", "1", None),
                                     ("", "1", "0270")], "0341")
# P0024: hospital outpatient (type of bill 0131) billing home-infusion codes:
# POS_NOT_HOME on S9379 and 99601.
inst_claim("P0024", D(2026, 2, 17), [("J2350", "600", None), ("J2930", "1", None), ("S9379", "1", None),
                                     ("99601", "1", None), ("", "2", "0120")], "0131")
# P0025: type of bill written without the leading zero (341). Clean.
inst_claim("P0025", D(2026, 2, 18), [("J2350", "600", None), ("J2930", "1", None), ("S9379", "1", None),
                                     ("99601", "1", None)], "341")
# An inpatient stay of a person outside the cohort: revenue-code-only lines.
inst_claim("P1040", D(2025, 8, 11), [("", "3", "0120"), ("", "1", "0250"), ("", "1", "0300"),
                                     ("85025", "1", "0305")], "0111")

# Background: office visits, labs and therapy for people outside the cohort.
bg_codes = [("99213", "1"), ("80053", "1"), ("85025", "1"), ("97110", "2")]
for i in range(30):
    person = f"P{1000 + i:04d}"
    day = D(2025, 1, 2) + dt.timedelta(days=(i * 37) % 500)
    code, units = bg_codes[i % len(bg_codes)]
    claim(person, day, [(code, units, {})], payer=["commercial", "ma", "medicaid", "mffs"][i % 4], pos="11",
          dx=[["I10", "E11.9"], ["M54.50"], ["J45.909"], ["Z00.00"]][i % 4])

# One damaged row: units that are not a number.
bad = dict(rows[-1])
bad.update({"claim_id": "CLM999999", "service_unit_quantity": "N/A", "hcpcs_code": "J2930", "person_id": "P0001",
            "claim_line_start_date": "2025-04-01", "claim_start_date": "2025-04-01"})
rows.append(bad)

# P0030: DX_CODE_INVALID (catalogue v3). A nursing agency's own 99601 claim
# with G35 after FY2026 (a header; no drug line on the claim), and a J1200
# claim with a code in no release (`z79.9`, lower case) besides a valid one.
claim("P0030", D(2025, 11, 5), [("99601", "1", {})], dx=["G35"])
claim("P0030", D(2025, 11, 19), [("J1200", "1", {})], dx=["G35.A", "z79.9"])

with open("claims.csv", "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=HEADER, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
print(f"wrote {len(rows)} rows")

with open("institutional.csv", "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=HEADER + ["bill_type_code", "revenue_center_code"], lineterminator="\n")
    w.writeheader()
    w.writerows(inst_rows)
print(f"wrote {len(inst_rows)} institutional rows")

with open("pharmacy.csv", "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=RX_HEADER, lineterminator="\n")
    w.writeheader()
    w.writerows(rx_rows)
print(f"wrote {len(rx_rows)} pharmacy rows")

# CCLF5 (CMS Part B physician claims) shaped copy of the cohort rows.
CCLF = {
    "claim_id": "CUR_CLM_UNIQ_ID", "claim_line_number": "CLM_LINE_NUM", "person_id": "BENE_MBI_ID",
    "claim_start_date": "CLM_FROM_DT", "claim_end_date": "CLM_THRU_DT",
    "claim_line_start_date": "CLM_LINE_FROM_DT", "claim_line_end_date": "CLM_LINE_THRU_DT",
    "place_of_service_code": "CLM_POS_CD", "hcpcs_code": "CLM_LINE_HCPCS_CD",
    "hcpcs_modifier_1": "HCPCS_1_MDFR_CD", "hcpcs_modifier_2": "HCPCS_2_MDFR_CD",
    "service_unit_quantity": "CLM_LINE_SRVC_UNIT_QTY", "rendering_npi": "RNDRG_PRVDR_NPI_NUM",
    "diagnosis_code_1": "CLM_DGNS_1_CD", "diagnosis_code_2": "CLM_DGNS_2_CD", "diagnosis_code_3": "CLM_DGNS_3_CD",
    "paid_amount": "CLM_LINE_CVRD_PD_AMT", "allowed_amount": "CLM_LINE_ALOWD_CHRG_AMT",
}


def iso(v):
    for f in ("%Y-%m-%d", "%Y%m%d", "%m/%d/%Y"):
        try:
            return dt.datetime.strptime(v, f).date().isoformat()
        except ValueError:
            pass
    return v


with open("../examples/cclf5/claims.csv", "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(list(CCLF.values()) + ["CLM_TYPE_CD", "CLM_ADJSMT_TYPE_CD"])
    for r in rows:
        if not r["person_id"].startswith("P00") or r["service_unit_quantity"] == "N/A":
            continue
        vals = [iso(r[k]) if k.endswith("_date") else r[k] for k in CCLF]
        vals[2] = "1EG4TE5MK" + r["person_id"][-2:]
        w.writerow(vals + ["71", "0"])

with open("../examples/cclf5/columns.toml", "w") as f:
    f.write("# CMS CCLF5 (Part B physician) field names -> canonical columns.\n")
    f.write("# Use: claims-audit run --columns examples/cclf5/columns.toml examples/cclf5/claims.csv\n")
    f.write("# CCLF has no payer column (all Medicare FFS): payer rules report not evaluable.\n")
    for k, v in CCLF.items():
        f.write(f'{k} = "{v}"\n')
