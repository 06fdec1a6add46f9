#!/bin/bash
# After run.sh: the proxy curve on the held-out windows, the best checkpoint exported as
# ir2i-compact-8 with ir2i-compact-7's post-filter, its bit tables, that filter fine-tuned
# 20 min on the new model's pictures, the whole held-out photos at 0.65x against JPEG beside
# ir2i-compact-7's kept rows (experiments/evaluate_candidate.sh says each step). Resumable.
exec "$(dirname "$0")/../../../experiments/evaluate_candidate.sh" ra6 ir2i-compact-8 ir2i-compact-7 \
    results/training/ra6-compact7-ladder8 results/heldout/ra5b/compact7-065/rd_points.csv \
    results/heldout/ra6/compact8-065
