-- The DuckDB peer: the SQL an analyst would write for the core of the rule
-- catalogue, over the same medical extract the audit reads. scripts/bench.sh
-- runs it next to claims-audit (replacing {{SOURCE}} with read_csv(...) or
-- read_parquet(...)) and writes its findings to {{OUT}}.
--
-- Covered: scope, reversal netting by (person, date, code), DX_NOT_MS,
-- DX_NOT_VALID_ON_DOS, ADDON_WITHOUT_PRIMARY, UNITS_OVER_DAILY_MAX,
-- POS_NOT_HOME, S_CODE_MEDICARE, DOSE_UNEXPECTED, INTERVAL_TOO_SHORT and
-- INTERVAL_OVERDUE. Not covered (what makes the audit's own work larger):
-- episodes, initiation pairs, per-diem spans, modifiers, NDCs, pharmacy
-- claims, rejects with line numbers, evidence and messages.

CREATE TEMP TABLE lines AS
WITH src AS (SELECT * FROM {{SOURCE}}),
typed AS (
  SELECT
    coalesce(nullif(trim(CAST(person_id AS VARCHAR)), ''), CAST(member_id AS VARCHAR)) AS person_id,
    CAST(claim_id AS VARCHAR) AS claim_id,
    CAST(claim_line_number AS VARCHAR) AS claim_line_number,
    upper(trim(CAST(hcpcs_code AS VARCHAR))) AS code,
    coalesce(
      try_cast(CAST(claim_line_start_date AS VARCHAR) AS DATE),
      try_cast(try_strptime(CAST(claim_line_start_date AS VARCHAR), '%Y%m%d') AS DATE),
      try_cast(try_strptime(CAST(claim_line_start_date AS VARCHAR), '%m/%d/%Y') AS DATE)
    ) AS d,
    try_cast(CAST(service_unit_quantity AS VARCHAR) AS DOUBLE) AS units,
    upper(replace(CAST(diagnosis_code_1 AS VARCHAR), '.', '')) AS dx1,
    upper(replace(CAST(diagnosis_code_2 AS VARCHAR), '.', '')) AS dx2,
    upper(replace(CAST(diagnosis_code_3 AS VARCHAR), '.', '')) AS dx3,
    lpad(CAST(try_cast(try_cast(CAST(place_of_service_code AS VARCHAR) AS DOUBLE) AS INTEGER) AS VARCHAR), 2, '0') AS pos,
    lower(coalesce(CAST(payer AS VARCHAR), '') || ' ' || coalesce(CAST(plan AS VARCHAR), '')) AS payer_text
  FROM src
)
SELECT * FROM typed
WHERE code LIKE 'J%' OR code IN ('S9379', 'S9490', '99601', '99602');

-- Net units per person, date and code (a reversal cancels its original).
CREATE TEMP TABLE net AS
SELECT person_id, d, code, sum(units) AS net_units FROM lines GROUP BY ALL;

CREATE TEMP TABLE admins AS
SELECT person_id, d, net_units AS dose,
       d - lag(d) OVER (PARTITION BY person_id ORDER BY d) AS days_since
FROM net WHERE code = 'J2350' AND net_units > 0;

CREATE TEMP TABLE findings AS
SELECT 'DX_NOT_MS' AS rule_id, person_id, claim_id, claim_line_number, d FROM lines
WHERE code IN ('J2350', 'J2351') AND units > 0
  AND NOT (coalesce(dx1, '') LIKE 'G35%' OR coalesce(dx2, '') LIKE 'G35%' OR coalesce(dx3, '') LIKE 'G35%')
UNION ALL
SELECT 'DX_NOT_VALID_ON_DOS', person_id, claim_id, claim_line_number, d FROM lines
WHERE code IN ('J2350', 'J2351') AND units > 0
  AND ((d >= DATE '2025-10-01' AND 'G35' IN (dx1, dx2, dx3))
    OR (d < DATE '2025-10-01' AND (dx1 LIKE 'G35_%' OR dx2 LIKE 'G35_%' OR dx3 LIKE 'G35_%')))
UNION ALL
SELECT 'ADDON_WITHOUT_PRIMARY', l.person_id, l.claim_id, l.claim_line_number, l.d FROM lines l
JOIN net a ON a.person_id = l.person_id AND a.d = l.d AND a.code = '99602' AND a.net_units > 0
LEFT JOIN net p ON p.person_id = l.person_id AND p.d = l.d AND p.code = '99601'
WHERE l.code = '99602' AND coalesce(p.net_units, 0) <= 0
UNION ALL
SELECT 'UNITS_OVER_DAILY_MAX', l.person_id, l.claim_id, l.claim_line_number, l.d FROM lines l
JOIN net n ON n.person_id = l.person_id AND n.d = l.d AND n.code = l.code
WHERE (l.code IN ('S9379', 'S9490', '99601') AND n.net_units > 1) OR (l.code = '99602' AND n.net_units > 3)
UNION ALL
SELECT 'POS_NOT_HOME', person_id, claim_id, claim_line_number, d FROM lines
WHERE code IN ('S9379', 'S9490', '99601', '99602') AND pos IS NOT NULL AND pos <> '12' AND units > 0
UNION ALL
SELECT 'S_CODE_MEDICARE', person_id, claim_id, claim_line_number, d FROM lines
WHERE code IN ('S9379', 'S9490') AND payer_text LIKE '%medicare%' AND payer_text NOT LIKE '%advantage%' AND units > 0
UNION ALL
SELECT 'DOSE_UNEXPECTED', person_id, NULL, NULL, d FROM admins WHERE dose NOT IN (300, 600)
UNION ALL
SELECT 'INTERVAL_TOO_SHORT', person_id, NULL, NULL, d FROM admins WHERE days_since >= 35 AND days_since < 140
UNION ALL
SELECT 'INTERVAL_OVERDUE', person_id, NULL, NULL, d FROM admins WHERE days_since > 210;

COPY findings TO '{{OUT}}' (FORMAT parquet);
