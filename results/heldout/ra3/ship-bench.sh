#!/bin/bash
# ra3's model with its own post-filter (ir2i-compact-5) on the held-out photos at full size
# and on Kodak (reported only), beside ir2i-compact-4's rows of the lever-2 runs (renamed
# compact-4*), the JPEG and other codecs' points kept from those runs.
set -euo pipefail
cd /work/main
. ~/venv/bin/activate
B=${B:-models/ir2i-compact-5}
awk -F, 'NR == 1 || $2 == "jpeg" || $2 == "ir2i-psnr" { print; next }
         $2 == "ir2i" { $2 = "compact-4"; print }' OFS=, \
    results/heldout/bit-tables/full/rd_points.csv > results/heldout/ra3/kept-full.csv
python -m ir2icodec.bench.rd --data ~/ir2i-runs/heldout_full --codecs ir2i --model $B \
    --keep results/heldout/ra3/kept-full.csv --out results/heldout/ra3/compact5-full --jobs 2
awk -F, '$2 == "ir2i" { $2 = "compact-4" } $2 == "ir2i-uniform" { $2 = "compact-4-uniform" }
         { print }' OFS=, results/kodak/rd-v3/rd_points.csv > results/heldout/ra3/kept-kodak.csv
python -m ir2icodec.bench.rd --data ../shared/data/kodak --codecs ir2i,ir2i-uniform --model $B \
    --keep results/heldout/ra3/kept-kodak.csv --out results/kodak/rd-compact-5 --jobs 2
