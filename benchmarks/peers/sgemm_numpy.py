# The machine's practical single-precision matrix-multiply peak, the ceiling for workload 2:
# numpy's sgemm (its bundled OpenBLAS, all cores) on 2048 x 2048 float32 matrices,
# 2 * 2048^3 FLOP per product, median of 20 products after 3 warm-ups.
import statistics, time
import numpy as np

n = 2048
rng = np.random.default_rng(0)
a = rng.standard_normal((n, n), dtype=np.float32)
b = rng.standard_normal((n, n), dtype=np.float32)
for _ in range(3):
    a @ b
times = []
for _ in range(20):
    t = time.perf_counter()
    a @ b
    times.append(time.perf_counter() - t)
m = statistics.median(times)
print(f"numpy sgemm {n}^2 {2 * n**3 / m / 1e9:.1f} GFLOP/s ({m * 1e3:.2f} ms)")
