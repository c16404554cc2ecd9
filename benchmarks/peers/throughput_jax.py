# Workload 2 in JAX: forward + backward of a width-1024, depth-16 (16 dense layers),
# batch-512 ReLU MLP, loss sum(out^2), jit-compiled; GFLOP/s counting 6*B*sum(d_in*d_out);
# then the same FLOP as 4 networks of batch 128, as a sweep's stack runs them.
# Workload 3: 1000 trials of the seed's deep network (10-100-50-25-1), one N(0,1) input
# [1, 10] per trial, new glorot_uniform weights each trial, gradients read back to the host.
import statistics, time
import jax, jax.numpy as jnp

def mlp_loss(params, x):
    for i, (w, b) in enumerate(params):
        x = x @ w + b
        if i < len(params) - 1:
            x = jax.nn.relu(x)
    return jnp.sum(x * x)

grad = jax.jit(jax.grad(mlp_loss))

def glorot(key, d_in, d_out):
    lim = (6.0 / (d_in + d_out)) ** 0.5
    return jax.random.uniform(key, (d_in, d_out), jnp.float32, -lim, lim)

def init(key, widths):
    keys = jax.random.split(key, len(widths) - 1)
    return [(glorot(k, a, b), jnp.zeros((b,), jnp.float32)) for k, a, b in zip(keys, widths[:-1], widths[1:])]

W, D, B = 1024, 16, 512
params = init(jax.random.PRNGKey(0), [W] * (D + 1))
x = jax.random.normal(jax.random.PRNGKey(1), (B, W), jnp.float32)
def median_step(step, *args):
    """Seconds per call of `step(*args)` after one compiling call: the median of 5."""
    jax.block_until_ready(step(*args))
    times = []
    for _ in range(5):
        t = time.perf_counter()
        jax.block_until_ready(step(*args))
        times.append(time.perf_counter() - t)
    return statistics.median(times)

m = median_step(grad, params, x)
print(f"jax throughput {6 * B * D * W * W / m / 1e9:.1f} GFLOP/s ({m * 1e3:.1f} ms/step)")

# The same FLOP as a sweep's stack takes them (gradscope's throughput-stack): S networks of
# batch B / S, each with its own weights, inside one jit. The S gradients written out one after
# another is the fastest form we found: XLA runs the S independent products as they are.
# `jax.vmap(jax.grad(mlp_loss))` over stacked weights (one batched product a layer) measured
# 113-124 GFLOP/s against this form's 150-156 on a 2-core EPYC (benchmarks/README.md).
S = 4
stack = [init(k, [W] * (D + 1)) for k in jax.random.split(jax.random.PRNGKey(2), S)]
xs = [jax.random.normal(k, (B // S, W), jnp.float32) for k in jax.random.split(jax.random.PRNGKey(3), S)]
one = jax.grad(mlp_loss)
grad_stack = jax.jit(lambda ps, xs: [one(p, x) for p, x in zip(ps, xs)])
m = median_step(grad_stack, stack, xs)
print(f"jax throughput-stack {6 * B * D * W * W / m / 1e9:.1f} GFLOP/s ({m * 1e3:.1f} ms/step, "
      f"{S} x batch {B // S})")

widths = [10, 100, 50, 25, 1]
runs = []
for rep in range(3):
    t = time.perf_counter()
    for trial in range(1000):
        key = jax.random.PRNGKey(trial)
        p = init(key, widths)
        xi = jax.random.normal(jax.random.fold_in(key, 1), (1, 10), jnp.float32)
        jax.block_until_ready(grad(p, xi))
    runs.append(time.perf_counter() - t)
m = statistics.median(runs)
print(f"jax sweep {1000 / m:.1f} trials/s ({m:.3f} ms/trial)")
