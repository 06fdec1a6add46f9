#!/bin/bash
# ir2i-compact-9 (compact-8 trained on jointly for longer, with a quantisation-aware int8
# post-filter: results/training/cycled-inpaint/eval2.sh) on the held-out photos at full size
# and on Kodak (reported only), beside compact-7's rows (kept, renamed compact-7*), then
# against compact-7 directly (anchor compact-7, over the range both reach). B: the bundle
# (default: the shipped copy). Resumable: each step is skipped when its output exists.
set -euo pipefail
cd "$(dirname "$0")/../../.."
. ~/venv/bin/activate
B=${B:-models/ir2i-compact-9}
O=results/heldout/compact9
[ -f $O/full/rd_points.csv ] || python -m ir2icodec.bench.rd --data ~/ir2i-runs/heldout_full \
    --codecs ir2i --model $B --keep results/heldout/ra5b/compact7-full/rd_points.csv \
    --keep-as ir2i=compact-7 --out $O/full --jobs 2
[ -f results/kodak/rd-compact-9/rd_points.csv ] || python -m ir2icodec.bench.rd \
    --data ../shared/data/kodak --codecs ir2i,ir2i-uniform --model $B \
    --keep results/kodak/rd-compact-7/rd_points.csv --keep-as ir2i=compact-7 \
    --keep-as ir2i-uniform=compact-7-uniform --out results/kodak/rd-compact-9 --jobs 2
bash experiments/bdrate_against.sh compact-7 $O/vs-compact7 \
    kodak:results/kodak/rd-compact-9 full:$O/full 065:$O/065
