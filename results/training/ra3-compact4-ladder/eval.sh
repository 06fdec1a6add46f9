#!/bin/bash
# After run.sh: the proxy curve on the held-out windows, the chosen checkpoint exported with
# ir2i-compact-4's post-filter, its bit tables counted on training photos, and the whole
# held-out photos at 0.65x against JPEG (JPEG and compact-4's rows kept from lever 2's run).
set -euo pipefail
cd /work/main
. ~/venv/bin/activate
D=results/training/ra3-compact4-ladder
B=$HOME/ir2i-runs/bundles/ra3
cp ~/ir2i-runs/ra3/log.jsonl ~/ir2i-runs/ra3/config.json $D/
python -m experiments.rate_curve --log $D/log.jsonl > $D/rate_curve.txt
[ -f $B/model.json ] || python -m ir2icodec export ~/ir2i-runs/ra3/best.pt $B \
    --name ir2i-compact-5 --postfilter-from models/ir2i-compact-4
grep -q bit_tables $B/model.json || python -m ir2icodec.training.bit_tables --model $B \
    --data ../shared/data/train
mkdir -p results/heldout/ra3
awk -F, 'NR == 1 || $2 == "jpeg" { print; next } $2 == "ir2i" { $2 = "compact-4"; print }' OFS=, \
    results/heldout/bit-tables/compact-4-065/rd_points.csv > results/heldout/ra3/kept-065.csv
python -m ir2icodec.bench.rd --data ~/ir2i-runs/heldout065 --codecs ir2i --model $B \
    --keep results/heldout/ra3/kept-065.csv --out results/heldout/ra3/compact5-065 --jobs 2
