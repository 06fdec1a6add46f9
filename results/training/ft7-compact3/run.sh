#!/bin/bash
# ft7-compact3: the shipped ir2i-compact-3 continued with the faster CPU setup of 2026-11-27:
# 2 data-parallel processes x 1 thread, bf16 autocast, 128 windows each (256 per step).
cd /work/main
export OMP_NUM_THREADS=1
exec nohup nice -n 5 torchrun --standalone --nproc_per_node 2 -m ir2icodec.training.train --pack /work/main/.gpu/train.npz --out /root/ir2i-runs/ft7-compact3 --preset compact --inpaint-layers 4 --loss mix --steps 20000 --batch 128 --threads 1 --precision bf16 --lr 3e-5 --lr-drops 0.6,0.85 --val-every 500 --checkpoint-minutes 5 --init /work/main/models/ir2i-compact-3 --resume >> /root/ir2i-runs/ft7-compact3.out 2>&1
