#!/bin/bash
# After run-joint.sh: the cycled-inpainting candidate (ir2i-compact-8) from its best checkpoint
# to its held-out score. Steps (each skipped when its output exists; resumable):
#  1. the joint run's log, config and proxy curve copied here;
#  2. exported with the 48-channel filter of ~/ir2i-runs/bundles/shrink48
#     (results/training/pf-shrink48/run.sh: compact-7's filter cut to 48 channels);
#  3. its own bit tables, counted on training photos' codes;
#  4. 300 training photos decoded by it (the filter's training pairs);
#  5. two filters fine-tuned on them side by side (one thread each, 25 minutes): shrink48's
#     filter as it is (48 channels) and cut to 32 (--shrink), each written into its own copy
#     of the bundle (BUNDLE-48, BUNDLE-32), chosen between on the held-out photos by
#     benchmarks.twins (speed and quality; files are the same, only the filter differs).
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
for width in 48 32; do
    F=$R/pf-$RUN-$width
    [ -d $B-$width ] || cp -r $B $B-$width
    [ -f $F/done ] && continue
    RESUME=""; [ -f $F/last.pt ] && RESUME="--resume"
    SHRINK=""; LR=1.5e-4; [ $width = 32 ] && SHRINK="--shrink --width 32" && LR=3e-4
    (OMP_NUM_THREADS=1 python -m ir2icodec.training.train_postfilter --pairs $P --out $F \
        --init $R/bundles/shrink48 $SHRINK --loss mix --minutes 25 --batch 8 --lr $LR \
        --threads 1 --val-every 200 --val-photos 40 --bundle $B-$width $RESUME \
        > $F.out 2>&1 && touch $F/done && cp $F/log.jsonl $D/postfilter-$width-log.jsonl) &
done
wait
