# Independent computation of tanh's order-to-chaos boundary (Poole et al. 2016; Schoenholz et
# al. 2017): q* = sw2 * E[tanh(sqrt(q*) z)^2] + sb2, chi_1 = sw2 * E[sech^4(sqrt(q*) z)],
# boundary chi_1 = 1. Expectations by scipy.integrate.quad (adaptive Gauss-Kronrod on the
# density), q* by fixed-point iteration to 1e-15, the boundary sigma_w by brentq.
import numpy as np
from scipy.integrate import quad
from scipy.optimize import brentq

def E(f, q):
    s = np.sqrt(q)
    g = lambda z: f(s * z) * np.exp(-z * z / 2) / np.sqrt(2 * np.pi)
    return quad(g, -np.inf, np.inf, epsabs=1e-15, epsrel=1e-13, limit=200)[0]

def qstar(sw2, sb2):
    q = 1.0
    for _ in range(100000):
        qn = sw2 * E(lambda u: np.tanh(u) ** 2, q) + sb2
        if abs(qn - q) <= 1e-15 * max(q, 1e-300):
            return qn
        q = qn
    return q

def chi1(sw, sb):
    q = qstar(sw * sw, sb * sb)
    return sw * sw * E(lambda u: np.cosh(u) ** -4, q), q

for sb in (0.05, 0.1, 0.3, 0.5, 1.0):
    sw = brentq(lambda s: chi1(s, sb)[0] - 1.0, 1.0, 4.0, xtol=1e-13)
    c, q = chi1(sw, sb)
    print(f"sigma_b={sb}: critical sigma_w={sw:.10f} (sigma_w^2={sw*sw:.10f}), q*={q:.10f}")
for sw in (0.9, 1.1, 1.5, 2.0):
    c, q = chi1(sw, 0.0) if sw > 1 else (sw * sw, 0.0)
    print(f"sigma_b=0 sigma_w={sw}: chi_1={c:.10f} q*={q:.10f}")
