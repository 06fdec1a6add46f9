#!/bin/bash
# After run-joint.sh: the cycled-inpainting candidate (ir2i-compact-8) from its best checkpoint
# to its held-out score. Steps (each skipped when its output exists; resumable):
#  1. the joint run's log, config and proxy curve copied here;
#  2. exported with the 48-channel filter of ~/ir2i-runs/bundles/shrink48
#     (results/training/pf-shrink48/run.sh: compact-7's filter cut to 48 channels);
#  3. its own bit tables, counted on training photos' codes;
#  4. 300 training photos decoded by it (the filter's training pairs);
#  5. shrink48's filter fine-tuned on them (2 threads, 15 minutes; FILTER_WIDTH=32 cuts it to 32
#     channels first, --shrink), written into the bundle;
#  6. python -m benchmarks.twins against compact-7 and shrink48 (every 4th held-out photo at
#     0.65x, 3 and 8 stages; kodim23's decode time), then the held-out photos at 0.65x
#     against JPEG beside compact-7's kept rows.
cd "$(dirname "$0")/../../.." || exit 1
. ~/venv/bin/activate
set -euo pipefail
WIDTH=${WIDTH:-8}
RUN=cyc$WIDTH-joint
R=$HOME/ir2i-runs
B=$R/bundles/$RUN
P=$R/pairs-$RUN
D=results/training/cycled-inpaint
cp $R/$RUN/log.jsonl $D/joint-log.jsonl
cp $R/$RUN/config.json $D/joint-config.json
python -m experiments.rate_curve --log $D/joint-log.jsonl > $D/joint-rate_curve.txt
[ -f $B/model.json ] || python -m ir2icodec export $R/$RUN/best.pt $B --name ir2i-compact-8 \
    --postfilter-from $R/bundles/shrink48
grep -qs bit_tables $B/model.json || python -m ir2icodec.training.bit_tables --model $B \
    --data ../shared/data/train
[ -f $P/done ] || { rm -rf $P && python -m ir2icodec.training.postfilter_pairs \
    --data ../shared/data/train --model $B --out $P --limit 300 && touch $P/done; }
FILTER_WIDTH=${FILTER_WIDTH:-48}
F=$R/pf-$RUN
SHRINK=""; LR=1.5e-4; [ "$FILTER_WIDTH" != 48 ] && SHRINK="--shrink --width $FILTER_WIDTH" && LR=3e-4
RESUME=""; [ -f $F/last.pt ] && RESUME="--resume"
[ -f $F/done ] || python -m ir2icodec.training.train_postfilter --pairs $P --out $F \
    --init $R/bundles/shrink48 $SHRINK --loss mix --minutes 15 --batch 8 --lr $LR \
    --threads 2 --val-every 200 --val-photos 40 --bundle $B $RESUME
touch $F/done
cp $F/log.jsonl $D/postfilter-log.jsonl
[ -f $D/twins.md ] || python -m benchmarks.twins --data $R/heldout065 --every 4 \
    --bundle compact-7=models/ir2i-compact-7 --bundle shrink48=$R/bundles/shrink48 \
    --bundle compact-8=$B --rounds 11 --out $D/twins.md
O=results/heldout/cycled/065
[ -f $O/rd_points.csv ] || python -m ir2icodec.bench.rd --data $R/heldout065 --codecs ir2i \
    --model $B --keep results/heldout/ra5b/compact7-065/rd_points.csv --keep-as ir2i=compact-7 \
    --out $O --jobs 2
