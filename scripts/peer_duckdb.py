#!/usr/bin/env python3
"""Runs scripts/peer_duckdb.sql on one medical extract (CSV or Parquet) and
prints its findings by rule. Used by scripts/bench.sh as the DuckDB peer.

    python3 scripts/peer_duckdb.py EXTRACT OUT.parquet
"""
import pathlib
import sys

import duckdb


def main():
    extract, out = sys.argv[1], sys.argv[2]
    sql = (pathlib.Path(__file__).parent / "peer_duckdb.sql").read_text()
    quoted = extract.replace("'", "''")
    if extract.endswith(".parquet"):
        source = f"read_parquet('{quoted}')"
    else:
        # Every column as text, as an analyst reading a payer CSV would.
        source = f"read_csv('{quoted}', header = true, all_varchar = true)"
    con = duckdb.connect()
    con.execute(sql.replace("{{SOURCE}}", source).replace("{{OUT}}", out.replace("'", "''")))
    for rule, n in con.execute("SELECT rule_id, count(*) FROM findings GROUP BY ALL ORDER BY 1").fetchall():
        print(f"{rule}\t{n}")


if __name__ == "__main__":
    main()
