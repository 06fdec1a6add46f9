#!/bin/bash
# ra5b's model with its own post-filter (ir2i-compact-7) on the held-out photos at full size
# and on Kodak (reported only), beside ir2i-compact-6's rows of the ra4 runs (renamed
# compact-6*), the JPEG and other codecs' points kept from those runs.
set -euo pipefail
cd /work/main
. ~/venv/bin/activate
B=${B:-models/ir2i-compact-7}
[ -d ~/ir2i-runs/heldout_full ] || python -m ir2icodec.training.holdout \
    --data ../shared/data/train --out ~/ir2i-runs/heldout_full --scale 1
mkdir -p results/heldout/ra5b
python -m ir2icodec.bench.rd --data ~/ir2i-runs/heldout_full --codecs ir2i --model $B \
    --keep results/heldout/ra4/compact6-full/rd_points.csv --keep-as ir2i=compact-6 \
    --out results/heldout/ra5b/compact7-full --jobs 2
python -m ir2icodec.bench.rd --data ../shared/data/kodak --codecs ir2i,ir2i-uniform --model $B \
    --keep results/kodak/rd-compact-6/rd_points.csv --keep-as ir2i=compact-6 \
    --keep-as ir2i-uniform=compact-6-uniform --out results/kodak/rd-compact-7 --jobs 2
