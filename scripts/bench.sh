#!/usr/bin/env bash
# End-to-end benchmark: generates payer-wide extracts (1M, 5M, 20M lines: a
# medical extract with professional and institutional claims, beside its
# pharmacy extract) and a 2M-line dense one, then runs the full audit (all
# outputs written) and the bare scan (--scan-only) on each, CSV and Parquet.
# Prints the median wall time of 3 runs, lines/s and peak RSS (from
# /usr/bin/time -v).
#
#   scripts/bench.sh [SIZES...]      e.g. scripts/bench.sh 1000000 5000000
#   BENCH_DIR=/path  keeps the generated files between runs (default /tmp/claims-audit-bench)
#   COLD_BUILD=1     also times a cold release build (the build target)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/cache/target}"
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
# Same features as `cargo test --release`, so the dependencies' build is shared.
cargo build --release --all-targets --quiet
BIN="$CARGO_TARGET_DIR/release/claims-audit"
DIR="${BENCH_DIR:-/tmp/claims-audit-bench}"
mkdir -p "$DIR"
SIZES=("${@:-1000000 5000000 20000000}")
read -r -a SIZES <<<"${SIZES[*]}"
RUNS="${RUNS:-3}"

gen() { # lines cohort fmt dense path [pharmacy-path]
  [ -s "$5" ] && return 0
  local t0=$(date +%s.%N)
  "$BIN" generate --lines "$1" --cohort "$2" --seed 42 --format "$3" $4 --out "$5" ${6:+--pharmacy "$6"}
  local t1=$(date +%s.%N)
  printf 'generated %-40s %8.2fs  %6.2fM lines/s\n' "$(basename "$5")" "$(echo "$t1 - $t0" | bc)" "$(echo "$1 / ($t1 - $t0) / 1000000" | bc -l)"
}

declare -A WALL PEAK
measure() { # label lines args...
  run_timed "$1" "$2" "$BIN" "${@:3}"
}

run_timed() { # label lines command...
  local label=$1 lines=$2; shift 2
  local walls=() rss=0
  for _ in $(seq "$RUNS"); do
    /usr/bin/time -v "$@" >/dev/null 2>"$DIR/time.txt"
    walls+=("$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$DIR/time.txt")")
    local r=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$DIR/time.txt")
    [ "$r" -gt "$rss" ] && rss=$r
  done
  local med=$(printf '%s\n' "${walls[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  WALL[$label]=$med
  PEAK[$label]=$(echo "$rss / 1024" | bc)
  printf '| %-34s | %8.3f | %9.2f | %8.0f |\n' "$label" "$med" "$(echo "$lines / $med / 1000000" | bc -l)" "$(echo "$rss / 1024" | bc -l)"
}

# Parquet generation is slower (about 0.8M lines/s); skip it above PARQUET_MAX.
PARQUET_MAX="${PARQUET_MAX:-20000000}"
for n in "${SIZES[@]}"; do
  cohort=$((n / 750))   # about 6% of lines in scope, as in the DuckDB reference extract
  gen "$n" "$cohort" csv "" "$DIR/payer_$n.csv" "$DIR/payer_${n}_rx.csv"
  [ "$n" -le "$PARQUET_MAX" ] && gen "$n" "$cohort" parquet "" "$DIR/payer_$n.parquet" "$DIR/payer_${n}_rx.parquet"
done
gen 2000000 0 csv --dense "$DIR/dense_2000000.csv"
gen 2000000 0 parquet --dense "$DIR/dense_2000000.parquet"

echo
echo "| run (median of $RUNS) | wall s | M lines/s | peak MiB |"
echo "|---|---:|---:|---:|"
for n in "${SIZES[@]}"; do
  for ext in csv parquet; do
    f="$DIR/payer_$n.$ext"
    [ -s "$f" ] || continue
    # The medical extract (professional and institutional claims) with its pharmacy extract.
    rx="$DIR/payer_${n}_rx.$ext"
    measure "audit payer $n $ext" "$n" run --quiet --out "$DIR/out" "$f" "$rx"
    measure "scan-only payer $n $ext" "$n" run --quiet --scan-only --out "$DIR/out" "$f" "$rx"
  done
done
for ext in csv parquet; do
  measure "audit dense 2000000 $ext" 2000000 run --quiet --out "$DIR/out" "$DIR/dense_2000000.$ext"
done

# The DuckDB peer (scripts/peer_duckdb.sql) on the 5M extracts, in this same run.
PEER_N=5000000
if [ -s "$DIR/payer_$PEER_N.csv" ]; then
  if [ ! -x "$DIR/venv/bin/python" ]; then
    python3 -m venv "$DIR/venv" && "$DIR/venv/bin/pip" install -q duckdb
  fi
  for ext in csv parquet; do
    f="$DIR/payer_$PEER_N.$ext"
    [ -s "$f" ] && run_timed "peer duckdb $PEER_N $ext" "$PEER_N" "$DIR/venv/bin/python" scripts/peer_duckdb.py "$f" "$DIR/peer.parquet"
  done
fi

# The cold build (COLD_BUILD=1): `cargo build --release` into an empty
# target directory, as a newcomer's first build (about 9 minutes here).
COLD=""
if [ "${COLD_BUILD:-0}" = 1 ]; then
  cold="$DIR/cold-target"
  rm -rf "$cold"
  t0=$(date +%s)
  CARGO_TARGET_DIR="$cold" cargo build --release --locked --quiet
  COLD=$(($(date +%s) - t0))
  rm -rf "$cold"
fi

# The issue 12 targets next to what this run measured.
ratio() { [ -n "${WALL[$1]:-}" ] && [ -n "${WALL[$2]:-}" ] && echo "${WALL[$1]} ${WALL[$2]}" | awk '{printf "%.2f", $1 / $2}'; }
verdict() { # value op bound
  [ -z "$1" ] && echo "not measured" && return
  awk -v v="$1" -v op="$2" -v b="$3" 'BEGIN { ok = (op == "<=") ? (v <= b) : (v >= b); print (ok ? "met" : "not met") }'
}
echo
echo "| target | measured | |"
echo "|---|---|---|"
r=$(ratio "audit payer $PEER_N parquet" "peer duckdb $PEER_N parquet"); echo "| Parquet audit <= 0.5x DuckDB peer | ${r:-?}x (${WALL[audit payer $PEER_N parquet]:-?} s vs ${WALL[peer duckdb $PEER_N parquet]:-?} s) | $(verdict "$r" "<=" 0.5) |"
r=$(ratio "audit payer $PEER_N csv" "peer duckdb $PEER_N csv"); echo "| CSV audit <= 0.25x DuckDB peer | ${r:-?}x (${WALL[audit payer $PEER_N csv]:-?} s vs ${WALL[peer duckdb $PEER_N csv]:-?} s) | $(verdict "$r" "<=" 0.25) |"
for ext in csv parquet; do
  p=${PEAK[audit payer $PEER_N $ext]:-}; echo "| peak RSS <= 400 MiB at 5M $ext | ${p:-?} MiB | $(verdict "$p" "<=" 400) |"
  p20=${PEAK[audit payer 20000000 $ext]:-}
  [ -n "$p20" ] && [ -n "$p" ] && echo "| peak RSS at 20M <= 1.15x 5M ($ext) | $p20 vs $p MiB | $(verdict "$p20" "<=" "$(echo "$p * 1.15" | bc)") |"
done
d=${WALL[audit dense 2000000 csv]:-}; [ -n "$d" ] && r=$(awk -v d="$d" 'BEGIN {printf "%.2f", 2 / d}') && echo "| dense >= 1M lines/s (CSV) | ${r}M lines/s | $(verdict "$r" ">=" 1) |"
if [ -n "$COLD" ]; then
  echo "| cold release build <= 12 min | $((COLD / 60)) min $((COLD % 60)) s | $(verdict "$COLD" "<=" 720) |"
else
  echo "| cold release build <= 12 min | not timed (COLD_BUILD=1 times it) | |"
fi
echo
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
