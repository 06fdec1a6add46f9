#!/bin/bash
# The PSNR-tuned model again, from ir2i-compact-7's networks (issue 20, item 4): on the
# held-out photos compact-7 with its MS-SSIM rate control already spends fewer bits than
# ir2i-psnr-1 at equal PSNR, so --tune psnr gets compact-7's codes, rate control on squared
# error and a post-filter fine-tuned for squared error: ra5b's checkpoint exported as
# ir2i-psnr-2 (tune psnr), its bit tables counted (the same codes as compact-7's), and
# ir2i-psnr-1's MSE filter fine-tuned 20 minutes on compact-7's pictures (ra5b's pairs, made
# by experiments/evaluate_candidate.sh), then the held-out photos at 0.65x beside compact-7's
# rows. Resumable: each step is skipped when its output exists.
set -euo pipefail
cd /work/main
. ~/venv/bin/activate
B=$HOME/ir2i-runs/bundles/psnr2
F=$HOME/ir2i-runs/pf-psnr2
D=results/training/pf-psnr2
[ -f $B/model.json ] || python -m ir2icodec.training.export ~/ir2i-runs/ra5b/best.pt $B \
    --name ir2i-psnr-2 --tune psnr --postfilter-from models/ir2i-psnr-1
grep -qs bit_tables $B/model.json || python -m ir2icodec.training.bit_tables --model $B \
    --data ../shared/data/train
RESUME=""; [ -f $F/last.pt ] && RESUME="--resume"
[ -f $F/done ] || python -m ir2icodec.training.train_postfilter --pairs ~/ir2i-runs/pairs-ra5b \
    --out $F --init models/ir2i-psnr-1 --loss mse --minutes 20 \
    --batch 8 --lr 1.5e-4 --threads 2 --val-every 200 --val-photos 40 --bundle $B $RESUME
touch $F/done
cp $F/log.jsonl $D/log.jsonl
# kept beside it: compact-7's rows (and the earlier defaults'), and ir2i-psnr-1's of the
# bit-tables run (named ir2i-psnr there)
K=results/heldout/psnr2/kept.csv
mkdir -p results/heldout/psnr2
{ cat results/heldout/ra5b/compact7-065/rd_points.csv
  grep ',ir2i-psnr,' results/heldout/bit-tables/compact-4-065/rd_points.csv |
      sed 's/,ir2i-psnr,/,psnr-1,/'; } > $K
[ -f results/heldout/psnr2/065/rd_points.csv ] || python -m ir2icodec.bench.rd \
    --data ~/ir2i-runs/heldout065 --codecs ir2i --model $B \
    --keep $K --keep-as ir2i=compact-7 --out results/heldout/psnr2/065 --jobs 2
