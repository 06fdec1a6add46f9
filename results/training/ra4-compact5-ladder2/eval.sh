#!/bin/bash
# After run.sh: the proxy curve on the held-out windows, the best checkpoint exported as
# ir2i-compact-6 with ir2i-compact-5's post-filter, its bit tables, that filter fine-tuned 20 min on
# the new model's pictures, the whole held-out photos at 0.65x against JPEG beside ir2i-compact-5's
# kept rows (experiments/evaluate_candidate.sh says each step). Resumable.
exec "$(dirname "$0")/../../../experiments/evaluate_candidate.sh" ra4 ir2i-compact-6 ir2i-compact-5 \
    results/training/ra4-compact5-ladder2 results/heldout/ra3/compact5-own-filter-065/rd_points.csv \
    results/heldout/ra4/compact6-065
