#!/usr/bin/env bash
# The Python package and Spark job's tests (pytest in a virtual environment
# this script creates), after `cargo test --release`: the README's test
# command runs both, and `.ci/run` runs that command.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

# The command line the Python tests compare with (`cargo test` built it).
cargo build --release --quiet

# PySpark runs on Java 17; Debian's package when the machine has no java.
if ! command -v java >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null
fi
VENV="${CLAIMS_AUDIT_VENV:-$CARGO_TARGET_DIR/venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import maturin, pyarrow, pyspark, polars, pandas, duckdb, pytest" >/dev/null 2>&1; then
  "$VENV/bin/pip" install -q --disable-pip-version-check maturin pyarrow "pyspark>=3.5" polars "pandas<3" duckdb pytest
fi
# The package's own build cache (no polars: a few minutes cold, seconds warm).
CARGO_TARGET_DIR="$CARGO_TARGET_DIR/python" "$VENV/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps ./python
# Run from the repository root so `claims_audit` is the installed package.
CLAIMS_AUDIT_BIN="$CARGO_TARGET_DIR/release/claims-audit" "$VENV/bin/python" -m pytest -q python/tests
