"""Proxy BD-rate of a rate-aware training run, read from its log (held-out windows only).

Every validation entry of a ``--rate-weight`` run logs each stage's held-out block MS-SSIM,
PSNR and estimated cost ("rate", a fraction of the stage's raw bits, under the run's learned
bit model). The k-stage point's rate is the sum of the first k stages' costs, for k = 2..S
(stage 1 never travels alone); each entry's curve is compared with the first entry's (the
starting model) by BD-rate. The estimate is the static-table cost, not the adaptive coder's
bytes: a quick way to watch a run, to be confirmed with ``ir2icodec.bench.rd`` on an export.

    python -m experiments.rate_curve --log RUN/log.jsonl
"""

from __future__ import annotations

import json
import math

import click
import numpy as np

from ir2icodec.bdrate import bd_rate


def stage_curve(entry: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cumulative rate, block MS-SSIM in dB, PSNR) of the 2..S-stage points of an entry."""
    rate = np.cumsum(entry["rate"])[1:]
    msssim = -10 * np.log10(1 - np.asarray(entry["msssim"][1:]))
    return rate, msssim, np.asarray(entry["psnr"][1:])


def proxy_bd(anchor: dict, entry: dict) -> tuple[float, float]:
    """BD-rate (%) of ``entry`` against ``anchor`` in block MS-SSIM (dB) and in PSNR."""
    r0, m0, p0 = stage_curve(anchor)
    r1, m1, p1 = stage_curve(entry)
    return bd_rate(r0, m0, r1, m1), bd_rate(r0, p0, r1, p1)


@click.command()
@click.option("--log", "log_path", required=True, type=click.Path(exists=True, dir_okay=False))
def main(log_path: str) -> None:
    """One line per validation entry: its rate, quality and proxy BD-rates."""
    with open(log_path) as log:
        entries = [e for e in map(json.loads, log) if "rate" in e]
    if not entries:
        raise click.ClickException(f"{log_path} has no rate-aware validation entries")
    click.echo("step  windows  objective  rate(8)  msssim(8)  psnr(8)  BD-msssim  BD-psnr")
    for e in entries:
        bd_m, bd_p = proxy_bd(entries[0], e)
        click.echo(
            f"{e['step']:5d} {e['windows']:8d} {e['objective']:10.5f} "
            f"{sum(e['rate']):8.3f} {e['msssim'][-1]:10.4f} {e['psnr'][-1]:8.2f} "
            f"{bd_m:+9.2f}% {bd_p:+7.2f}%"
            if not math.isnan(bd_m)
            else "n/a"
        )


if __name__ == "__main__":
    main()
