#!/bin/bash
# ir2i-compact-10, the third joint cycle (results/training/cycled-inpaint/eval3.sh; bundle B,
# default: the shipped copy) on the held-out photos at full size and on Kodak (reported only),
# beside compact-9's rows (kept, renamed compact-9*), then against compact-9 directly (anchor
# compact-9, over the range both reach). Resumable: each step is skipped when its output exists.
set -euo pipefail
cd "$(dirname "$0")/../../.."
. ~/venv/bin/activate
B=${B:-models/ir2i-compact-10}
O=results/heldout/joint3
[ -f $O/full/rd_points.csv ] || python -m ir2icodec.bench.rd --data ~/ir2i-runs/heldout_full \
    --codecs ir2i --model $B --keep results/heldout/compact9/full/rd_points.csv \
    --keep-as ir2i=compact-9 --out $O/full --jobs 2
[ -f $O/kodak/rd_points.csv ] || python -m ir2icodec.bench.rd \
    --data ../shared/data/kodak --codecs ir2i,ir2i-uniform --model $B \
    --keep results/kodak/rd-compact-9/rd_points.csv --keep-as ir2i=compact-9 \
    --keep-as ir2i-uniform=compact-9-uniform --out $O/kodak --jobs 2
bash experiments/bdrate_against.sh compact-9 $O/vs-compact9 \
    kodak:$O/kodak full:$O/full 065:$O/065
