"""``python -m benchmarks.rd``: the rate-distortion benchmark, kept for source checkouts.

The benchmark itself lives in :mod:`ir2icodec.bench.rd` and installs with the package as
``ir2i bench``; this module *is* that module when imported (``from benchmarks.rd import X``
and ``benchmarks.rd.X = ...`` reach the same objects), and runs its command under ``-m``.
"""

import sys

from ir2icodec.bench import rd as _rd

if __name__ == "__main__":
    sys.exit(_rd.main(prog_name="python -m benchmarks.rd"))
else:
    sys.modules[__name__] = _rd
