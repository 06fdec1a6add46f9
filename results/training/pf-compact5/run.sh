#!/bin/bash
# The post-filter of ra3's model (issue 20: "retrain its post-filter for the new codes"):
# decode 300 training photos with it, fine-tune ir2i-compact-4's filter (the one it borrowed)
# on them with the mix loss, write the best into the bundle, and measure the held-out photos
# at 0.65x again. Resumable: each step is skipped when its output exists.
set -euo pipefail
cd /work/main
. ~/venv/bin/activate
B=$HOME/ir2i-runs/bundles/ra3
P=$HOME/ir2i-runs/pairs-ra3
[ -d $P/heldout ] || python -m ir2icodec.training.postfilter_pairs \
    --data ../shared/data/train --model $B --out $P --limit 300
RESUME=""; [ -f ~/ir2i-runs/pf-ra3/last.pt ] && RESUME="--resume"
[ -f ~/ir2i-runs/pf-ra3/done ] || python -m ir2icodec.training.train_postfilter --pairs $P \
    --out ~/ir2i-runs/pf-ra3 --init models/ir2i-compact-4 --loss mix --minutes 20 \
    --batch 8 --lr 1.5e-4 --threads 2 --val-every 200 --val-photos 40 --bundle $B $RESUME
touch ~/ir2i-runs/pf-ra3/done
cp ~/ir2i-runs/pf-ra3/log.jsonl results/training/pf-compact5/
awk -F, '$2 == "ir2i" { $2 = "compact-5-borrowed-filter" } { print }' OFS=, \
    results/heldout/ra3/compact5-065/rd_points.csv > results/heldout/ra3/kept-own-filter-065.csv
python -m ir2icodec.bench.rd --data ~/ir2i-runs/heldout065 --codecs ir2i --model $B \
    --keep results/heldout/ra3/kept-own-filter-065.csv \
    --out results/heldout/ra3/compact5-own-filter-065 --jobs 2
