#!/bin/bash
# Quality check of the faster CPU training setup (2026-11-27 session): the same fresh compact
# model, mix loss, 600 steps of 256 windows, (A) fp32 in 1 process x 2 threads, (B) bf16 in
# 2 data-parallel processes x 1 thread x 128 windows.
cd /work/main
COMMON="--pack /work/main/.gpu/train.npz --preset compact --inpaint-layers 4 --loss mix --steps 600 --val-every 200 --checkpoint-minutes 5 --seed 0"
OMP_NUM_THREADS=1 torchrun --standalone --nproc_per_node 2 -m ir2icodec.training.train $COMMON --out /root/ir2i-runs/qc/bf16-ddp --batch 128 --threads 1 --precision bf16 > /root/ir2i-runs/qc/bf16-ddp.out 2>&1
python -m ir2icodec.training.train $COMMON --out /root/ir2i-runs/qc/fp32 --batch 256 --threads 2 --precision fp32 > /root/ir2i-runs/qc/fp32.out 2>&1
