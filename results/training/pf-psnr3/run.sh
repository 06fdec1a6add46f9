#!/bin/bash
# --tune psnr at the default's speed (issue 23's follow-up): ir2i-psnr-2 runs ir2i-compact-7's
# networks and a 64-channel float filter, so a --tune psnr file decodes at compact-7's speed.
# ir2i-psnr-3 is ir2i-compact-9's networks (the same checkpoint, codes and bit tables) with
# rate control on squared error (tune psnr) and compact-9's int8 post-filter fine-tuned
# quantisation-aware with the MSE loss on compact-9's pictures (the pairs its own filter was
# trained on, eval2.sh), then the held-out photos at 0.65x beside ir2i-psnr-2's rows, and
# the two bundles' decode times and scores side by side (benchmarks.twins).
# Resumable: each step is skipped when its output exists. STEPS=bundle stops after the bundle.
set -euo pipefail
cd "$(dirname "$0")/../../.."
. ~/venv/bin/activate
R=$HOME/ir2i-runs
B=$R/bundles/psnr3
F=$R/pf-psnr3-int8
D=results/training/pf-psnr3
[ -f $B/model.json ] || python -m ir2icodec.training.export $R/cyc8-joint2/best.pt $B \
    --name ir2i-psnr-3 --tune psnr --postfilter-from models/ir2i-compact-9
grep -qs bit_tables $B/model.json || python -m ir2icodec.training.bit_tables --model $B \
    --data ../shared/data/train
[ "${STEPS:-all}" = bundle ] && exit 0
RESUME=""; [ -f $F/last.pt ] && RESUME="--resume"
[ -f $F/done ] || python -m ir2icodec.training.train_postfilter --pairs $R/pairs-cyc8-joint2 \
    --out $F --init models/ir2i-compact-9 --int8 --loss mse --minutes ${FILTER_MINUTES:-20} \
    --batch 8 --lr 1e-4 --threads 2 --val-every 200 --val-photos 40 --bundle $B $RESUME
touch $F/done
cp $F/log.jsonl $D/log.jsonl
O=results/heldout/psnr3/065
[ -f $O/rd_points.csv ] || python -m ir2icodec.bench.rd --data $R/heldout065 --codecs ir2i \
    --model $B --keep results/heldout/psnr2/065/rd_points.csv --keep-as ir2i=psnr-2 \
    --out $O --jobs 2
[ -f $D/twins.md ] || python -m benchmarks.twins --data $R/heldout065 --every 4 \
    --bundle psnr-2=models/ir2i-psnr-2 --bundle psnr-3=$B --rounds 11 --out $D/twins.md
