#!/bin/bash
# After run-joint.sh: the cycled-inpainting candidate (WIDTH, default 8) from its best
# checkpoint to its held-out score (experiments/evaluate_candidate.sh says each step): exported
# as ir2i-compact-8 with the 48-channel filter of ~/ir2i-runs/bundles/shrink48
# (results/training/pf-shrink48/run.sh: compact-7's filter cut to 48 channels), its own bit
# tables, that filter fine-tuned 20 min on the new model's pictures, the held-out photos at
# 0.65x beside compact-7's kept rows. Resumable.
WIDTH=${WIDTH:-8}
cd "$(dirname "$0")/../../.." || exit 1
FILTER_FROM=$HOME/ir2i-runs/bundles/shrink48 exec experiments/evaluate_candidate.sh \
    cyc$WIDTH-joint ir2i-compact-8 ir2i-compact-7 results/training/cycled-inpaint \
    results/heldout/ra5b/compact7-065/rd_points.csv results/heldout/cycled/065
