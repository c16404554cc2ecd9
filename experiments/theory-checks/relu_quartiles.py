# Independent check of the finite-width spread of ||delta_0||/||delta_L|| for a ReLU He-normal
# MLP, batch 1, sum loss (delta_L = 1), output width 1, zero biases: simulate the real network
# (forward then backward with the same weights) and compare quartiles with the lognormal
# prediction log R ~ N(log R_mf - S, S), S = sum_hidden kappa/(4 n), kappa = 5 for relu.
import numpy as np, sys
rng = np.random.default_rng(12345)
seeds = int(sys.argv[1]) if len(sys.argv) > 1 else 300
for n in (64, 128, 256):
    for depth in (16, 32, 64):
        rs = []
        for s in range(seeds):
            x = rng.standard_normal(n)
            Ws = [rng.standard_normal((n, n)) * np.sqrt(2.0 / n) for _ in range(depth)]
            Wout = rng.standard_normal((n, 1)) * np.sqrt(2.0 / n)
            a = x; masks = []
            for W in Ws:
                z = a @ W; m = z > 0; masks.append(m); a = np.where(m, z, 0.0)
            d = np.ones(1)            # delta_L = d(sum out)/d out
            dL = np.linalg.norm(d)
            d = (Wout @ d) * masks[-1]
            for l in range(depth - 1, 0, -1):
                d = (Ws[l] @ d) * masks[l - 1]
            rs.append(np.linalg.norm(d) / dL)
        rs = np.array(rs)
        q1, med, q3 = np.percentile(rs, [25, 50, 75])
        S = depth * 5.0 / (4 * n)
        z = 0.6744897501960817
        p1, pm, p3 = np.exp(-S - z*np.sqrt(S)), np.exp(-S), np.exp(-S + z*np.sqrt(S))
        print(f"n={n} depth={depth}: measured q1 {q1:.4f} med {med:.4f} q3 {q3:.4f} | predicted {p1:.4f} {pm:.4f} {p3:.4f} | ratio q1 {q1/p1:.3f} q3 {q3/p3:.3f}", flush=True)
