import numpy as np
from scipy.integrate import quad
q = 2.1214735682
f = lambda u: np.cosh(u)**-4
ref = quad(lambda z: f(np.sqrt(q)*z)*np.exp(-z*z/2)/np.sqrt(2*np.pi), -np.inf, np.inf, epsabs=1e-15, epsrel=1e-13, limit=200)[0]
ref2 = quad(lambda z: f(np.sqrt(q)*z)*np.exp(-z*z/2)/np.sqrt(2*np.pi), -40, 40, epsabs=1e-15, epsrel=1e-13, limit=400, points=[0])[0]
for n in (50, 100, 150, 200, 300):
    x, w = np.polynomial.hermite.hermgauss(n)
    print(n, np.sum(w*f(np.sqrt(2*q)*x))/np.sqrt(np.pi) - ref)
print("quad inf", ref, "quad finite", ref2)
