# Independent computation of Schoenholz et al.'s xi_c for tanh near the edge of chaos at
# sigma_b = 0.3: q* by fixed-point iteration with scipy quad; c* by brentq on the correlation
# map c -> (sw2 E[tanh(u1) tanh(u2)] + sb2)/q* evaluated with numpy's 150-node hermgauss;
# chi_c = sw2 E[sech^2(u1) sech^2(u2)] at c*; xi_c = -1/ln chi_c.
import numpy as np
from scipy.integrate import quad
from scipy.optimize import brentq
x, w = np.polynomial.hermite.hermgauss(150)
X1, X2 = np.meshgrid(x, x, indexing="ij"); W = np.outer(w, w) / np.pi
def E(f, q):
    s = np.sqrt(q)
    return quad(lambda z: f(s*z)*np.exp(-z*z/2)/np.sqrt(2*np.pi), -np.inf, np.inf, epsabs=1e-15, epsrel=1e-13, limit=200)[0]
def qstar(sw2, sb2):
    q = 1.0
    for _ in range(100000):
        qn = sw2*E(lambda u: np.tanh(u)**2, q) + sb2
        if abs(qn-q) <= 1e-15*q: return qn
        q = qn
    return q
def pair(f, g, q, c):
    s = np.sqrt(2*q); u1 = s*X1; u2 = s*(c*X1 + np.sqrt(max(1-c*c, 0))*X2)
    return np.sum(W*f(u1)*g(u2))
sb = 0.3
for sw in (1.3955839752*0.99, 1.3955839752*1.01, 1.3955839752*1.02, 1.3955839752*1.05):
    sw2, sb2 = sw*sw, sb*sb
    q = qstar(sw2, sb2)
    chi1 = sw2*E(lambda u: np.cosh(u)**-4, q)
    if chi1 < 1:
        print(f"sigma_w={sw:.10f}: chi1={chi1:.10f} ordered xi_c={-1/np.log(chi1):.6f}")
        continue
    norm = sw2*pair(np.tanh, np.tanh, q, 1.0) + sb2
    f = lambda c: (sw2*pair(np.tanh, np.tanh, q, c) + sb2)/norm - c
    cs = brentq(f, 0.0, 1 - 1e-7 if f(1-1e-7) < 0 else 1-1e-9, xtol=1e-15)
    d = lambda u: np.cosh(u)**-2
    chic = sw2*pair(d, d, q, cs)
    print(f"sigma_w={sw:.10f}: chi1={chi1:.10f} q*={q:.10f} c*={cs:.10f} chi_c={chic:.10f} xi_c={-1/np.log(chic):.6f} near-critical 1/(chi1-1)={1/(chi1-1):.6f} -1/ln(2-chi1)={-1/np.log(2-chi1):.6f}")
