#!/bin/bash
# BD-rates of measured points against one of their own codecs (not JPEG), report only:
#
#   experiments/bdrate_against.sh ANCHOR OUT NAME:RESULTS_DIR...
#
# For each NAME:RESULTS_DIR, RESULTS_DIR/rd_points.csv is re-reported with ANCHOR as the
# anchor into OUT/NAME.md (e.g. a new model against the one it replaces, over the quality
# range both reach).
set -euo pipefail
anchor=$1 out=$2
shift 2
mkdir -p "$out"
for pair in "$@"; do
    name=${pair%%:*} src=${pair#*:}
    tmp=$(mktemp -d)
    cp "$src/rd_points.csv" "$tmp/"
    python -m ir2icodec.bench.rd --report-only --out "$tmp" --anchor "$anchor" >/dev/null
    cp "$tmp/bdrate.md" "$out/$name.md"
    rm -rf "$tmp"
done
