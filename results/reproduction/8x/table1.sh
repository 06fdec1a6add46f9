#!/bin/bash
# Issue 21: Table 1 at 640 k windows: every finished inpainting network of run.sh on the same
# 8,280 Kodak blocks (the classic methods are in ../table1_classic: no training). One table
# per network folder, so a network is measured once; delete a folder to measure it again.
cd /work/main || exit 1
. ~/venv/bin/activate
R=$HOME/ir2i-runs
OUT=results/reproduction/8x
finished() { [[ -f $1/log.jsonl ]] && grep -q '"step": 2500,' "$1/log.jsonl"; }
measure() {  # measure TABLE_DIR NAME CHECKPOINT
    [[ -f $1/table1.md ]] && return 0
    python -m experiments.table1_inpainting --data ../shared/data/kodak --out "$1" \
        --methods '' --network "$2=$3" --jobs 2
}
finished $R/8x/inpaint-only && measure $OUT/table1_networks multiscale $R/8x/inpaint-only/last.pt
finished $R/8x-seed1/inpaint-only &&
    measure $OUT/table1_networks_s1 multiscale-s1 $R/8x-seed1/inpaint-only/last.pt
# seed 1's network trained again (run-pending.sh: its checkpoint was lost, and Sep-Inp's seed 1
# needs it): measured beside the first, the same seed and settings
finished $R/8x-seed1/inpaint-only &&
    [[ $R/8x-seed1/inpaint-only/last.pt -nt $OUT/table1_networks_s1/table1.md ]] &&
    measure $OUT/table1_networks_s1_rerun multiscale-s1-rerun $R/8x-seed1/inpaint-only/last.pt
# (seed 0's joint network was measured beside the first, in table1_networks)
finished $R/8x/ir2i && ! grep -q multiscale-joint $OUT/table1_networks/table1.md &&
    measure $OUT/table1_joint multiscale-joint $R/8x/ir2i/best.pt
finished $R/8x-seed1/ir2i && measure $OUT/table1_joint_s1 multiscale-joint-s1 $R/8x-seed1/ir2i/best.pt
finished $R/8x/inpaint-vanilla && measure $OUT/table1_vanilla vanilla $R/8x/inpaint-vanilla/last.pt
finished $R/8x/inpaint-only-wide &&
    measure $OUT/table1_wide multiscale-wide $R/8x/inpaint-only-wide/last.pt
finished $R/8x/ir2i-wide && measure $OUT/table1_joint_wide multiscale-joint-wide $R/8x/ir2i-wide/best.pt
exit 0
