# Workload 4 in JAX, the fastest form we know: the same 1000 SGD steps as train_jax.py (the
# seed's deep network with 10 classes, 10-100-50-25-10, ReLU, glorot_uniform/zeros, batch 32,
# stable cross-entropy on a teacher network's labels, a fresh N(0,1) batch each step, learning
# rate 0.01), but all 1000 steps as one `lax.scan` inside one `jit`, every step's loss kept
# (returned as an array and read back once), as an expert writes a training loop whose steps
# need not reach the host. Compile time is excluded (one warm-up call of the same shapes).
# Prints the median of 5 runs.
import statistics, time
import jax, jax.numpy as jnp

WIDTHS = [10, 100, 50, 25, 10]
STEPS = 1000

def glorot(key, d_in, d_out):
    lim = (6.0 / (d_in + d_out)) ** 0.5
    return jax.random.uniform(key, (d_in, d_out), jnp.float32, -lim, lim)

def init(key):
    keys = jax.random.split(key, len(WIDTHS) - 1)
    return [(glorot(k, a, b), jnp.zeros((b,), jnp.float32)) for k, a, b in zip(keys, WIDTHS[:-1], WIDTHS[1:])]

def forward(params, x):
    for i, (w, b) in enumerate(params):
        x = x @ w + b
        if i < len(params) - 1:
            x = jax.nn.relu(x)
    return x

def loss_fn(params, x, labels):
    logp = jax.nn.log_softmax(forward(params, x))
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))

@jax.jit
def train(params, teacher, keys):
    def step(params, key):
        x = jax.random.normal(key, (32, 10), jnp.float32)
        labels = jnp.argmax(forward(teacher, x), axis=1)
        loss, grads = jax.value_and_grad(loss_fn)(params, x, labels)
        params = jax.tree_util.tree_map(lambda p, g: p - 0.01 * g, params, grads)
        return params, loss
    return jax.lax.scan(step, params, keys)

params, teacher = init(jax.random.PRNGKey(0)), init(jax.random.PRNGKey(1))
keys = jax.random.split(jax.random.PRNGKey(2), STEPS)
train(params, teacher, keys)[1].block_until_ready()
runs = []
for _ in range(5):
    t = time.perf_counter()
    _, losses = train(params, teacher, keys)
    losses = jax.device_get(losses)
    runs.append(time.perf_counter() - t)
assert len(losses) == STEPS
m = statistics.median(runs)
print(f"jax train (one lax.scan in one jit) {STEPS / m:.1f} steps/s ({m:.3f} ms/step)")
