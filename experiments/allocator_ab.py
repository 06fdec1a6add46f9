"""A/B of glibc's allocator settings for decoding (issue "viewer speed"; measured, not shipped).

    python experiments/allocator_ab.py   # needs /tmp/k23c6.ir2i: ir2i encode kodim23.png --stages 8

Fresh processes, alternating: the default allocator against mallopt(M_MMAP_THRESHOLD = 512 MiB,
M_TRIM_THRESHOLD = 1 GiB), which keeps onnxruntime's large per-run buffers (the sessions run
without their arena) on the heap for reuse instead of a fresh mmap, and its page faults, every
run. Prints the medians of: import + model load, the first decode, a second decode.
A throwaway measurement script kept for the record (no click: it has no options).
"""

import subprocess, sys, statistics, time
child = r'''
import sys, time, ctypes
if sys.argv[1] == "1":
    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(-3, 512 * 1024 * 1024)  # M_MMAP_THRESHOLD
    libc.mallopt(-1, 1024 * 1024 * 1024)  # M_TRIM_THRESHOLD
t0 = time.perf_counter()
from ir2icodec import api
data = open("/tmp/k23c6.ir2i", "rb").read()
m = api.load_model(None)
t1 = time.perf_counter()
api.decode_with_warnings(data, model=m)
t2 = time.perf_counter()
api.decode_with_warnings(data, model=m)
t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
'''
res = {"0": [], "1": []}
for r in range(9):
    for k in ("0", "1"):
        out = subprocess.run([sys.executable, "-c", child, k], capture_output=True, text=True, env={"PYTHONPATH": "/work/main", "PATH": "/usr/bin"}).stdout
        res[k].append([float(x) for x in out.split()])
for k, v in res.items():
    print(k, [round(statistics.median(x[i] for x in v), 4) for i in range(3)])
