"""claims-audit for notebooks: audit ocrelizumab home-infusion claims held in
Arrow tables (pyarrow, polars, pandas), with the same rules and results as the
command line. ``claims_audit.spark`` runs the same audit on Spark.
"""

from __future__ import annotations

import datetime as _dt
import json as _json
import os as _os
from dataclasses import dataclass
from typing import Any, Optional, Union

import pyarrow as pa

from . import _core

__all__ = ["AuditResult", "audit", "rules", "__version__"]
__version__ = _core.VERSION

DateLike = Union[str, _dt.date, None]


@dataclass(frozen=True)
class AuditResult:
    """What a run found, as pyarrow Tables with the columns of the command
    line's output files (OUTPUTS.md): ``findings``, ``episodes``, ``rejects``
    and per-rule ``tallies`` (the manifest's ``rules``)."""

    findings: pa.Table
    episodes: pa.Table
    rejects: pa.Table
    tallies: pa.Table
    run_id: str
    totals: dict

    def __repr__(self) -> str:
        return (
            f"AuditResult(run_id={self.run_id!r}, findings={self.findings.num_rows}, "
            f"episodes={self.episodes.num_rows}, rejects={self.rejects.num_rows})"
        )


def _arrow(obj: Any, what: str) -> Any:
    """Anything with ``__arrow_c_stream__`` crosses as is; a pandas frame
    without it goes through pyarrow."""
    if obj is None or hasattr(obj, "__arrow_c_stream__"):
        return obj
    if isinstance(obj, pa.RecordBatch):
        return pa.Table.from_batches([obj])
    try:
        import pandas as pd

        if isinstance(obj, pd.DataFrame):
            return pa.Table.from_pandas(obj, preserve_index=False)
    except ImportError:
        pass
    raise TypeError(f"{what}: expected a pyarrow Table or an object with __arrow_c_stream__, got {type(obj).__name__}")


def _named(obj: Any, what: str) -> list:
    """One table, or a list of tables (several extracts: each is its own
    input, as each file is on the command line)."""
    if obj is None:
        return []
    if isinstance(obj, (list, tuple)):
        return [(f"{what}[{i}]", _arrow(t, what)) for i, t in enumerate(obj)]
    return [(what, _arrow(obj, what))]


def _date(v: DateLike, what: str) -> Optional[str]:
    if v is None:
        return None
    if isinstance(v, _dt.datetime):
        v = v.date()
    if isinstance(v, _dt.date):
        return v.isoformat()
    if isinstance(v, str):
        return v
    raise TypeError(f"{what}: expected a date or YYYY-MM-DD, got {type(v).__name__}")


def audit(
    medical: Any,
    pharmacy: Any = None,
    *,
    policy: Union[str, "_os.PathLike[str]", None] = None,
    date_from: DateLike = None,
    date_to: DateLike = None,
    lookback_days: int = 400,
) -> AuditResult:
    """Audits medical claim lines and, optionally, pharmacy claims.

    ``medical`` and ``pharmacy`` are each a table (pyarrow, polars, or
    anything with ``__arrow_c_stream__``; pandas through pyarrow) or a list of
    tables. Columns are those of INPUT.md, by canonical name; keep codes
    (HCPCS, NDC, revenue, type of bill, NPIs) as strings so leading zeros
    survive. A finding's ``source_line`` is its row's 1-based number in its
    table. ``policy`` is a policy TOML file (default: the embedded policy).
    Bad input (a missing column, a bad policy) raises ValueError with the
    command line's message."""
    tables = _named(medical, "medical") + _named(pharmacy, "pharmacy")
    d = _core.audit(
        tables,
        policy=None if policy is None else _os.fspath(policy),
        date_from=_date(date_from, "date_from"),
        date_to=_date(date_to, "date_to"),
        lookback_days=int(lookback_days),
    )
    return AuditResult(
        findings=d["findings"],
        episodes=d["episodes"],
        rejects=d["rejects"],
        tallies=d["tallies"],
        run_id=d["run_id"],
        totals=_json.loads(d["totals"]),
    )


def rules() -> pa.Table:
    """The rule catalogue: rule_id, category, default severity, summary."""
    return pa.Table.from_pylist(_core.rules())
