"""Reproductions of the paper's experiments (run as modules, e.g.
``python -m experiments.table1_inpainting``); see ``experiments/README.md``."""
