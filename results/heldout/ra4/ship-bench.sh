#!/bin/bash
# ra4's model with its own post-filter (ir2i-compact-6) on the held-out photos at full size
# and on Kodak (reported only), beside ir2i-compact-5's rows of the ra3 runs (renamed
# compact-5*), the JPEG and other codecs' points kept from those runs.
set -euo pipefail
cd /work/main
. ~/venv/bin/activate
B=${B:-models/ir2i-compact-6}
mkdir -p results/heldout/ra4
python -m ir2icodec.bench.rd --data ~/ir2i-runs/heldout_full --codecs ir2i --model $B \
    --keep results/heldout/ra3/compact5-full/rd_points.csv --keep-as ir2i=compact-5 \
    --out results/heldout/ra4/compact6-full --jobs 2
python -m ir2icodec.bench.rd --data ../shared/data/kodak --codecs ir2i,ir2i-uniform --model $B \
    --keep results/kodak/rd-compact-5/rd_points.csv --keep-as ir2i=compact-5 \
    --keep-as ir2i-uniform=compact-5-uniform --out results/kodak/rd-compact-6 --jobs 2
