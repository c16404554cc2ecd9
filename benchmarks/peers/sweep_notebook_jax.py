# The notebook's sweep (configs/sweeps/10-sweep-activation-init-depth.toml) in JAX, as a JAX
# user would write it: relu/tanh/sigmoid x glorot_uniform/he_normal/burn_default x depth
# 2..64, width 256, batch 16 N(0,1) inputs, loss sum(out^2), TRIALS seeds per point. Each
# trial returns every layer's ||delta_l|| from zero perturbations of the pre-activations (the
# gradient of a zero added to z_l is d loss / d z_l); the hidden layers are a lax.scan (the
# compiled graph does not grow with depth) and the trials a vmap. Compile time is included, as
# gradscope's start-up is.
#
# Two ways to organise the jit, both measured (benchmarks/README.md):
#   fused  one jit per (activation, depth) that draws the weights and input and takes the
#          gradients; the initialiser an argument (lax.switch).
#   split  one jit per (initialiser, depth) that draws all trials' weights at once (compiled
#          once, shared by the three activations, but run again for each), and one jit per
#          (activation, depth) for the gradients.
#   shared split's jits, each (initialiser, depth)'s weights drawn once and used by all three
#          activations.
# JAX's random generator is its default (threefry) unless JAX_DEFAULT_PRNG_IMPL says otherwise
# (`rbg` is faster on a CPU).
#
# Usage: python sweep_notebook_jax.py [TRIALS] [fused|split|shared]   (defaults: 20, split)
import sys, time
from functools import partial
import jax, jax.numpy as jnp

TRIALS = int(sys.argv[1]) if len(sys.argv) > 1 else 20
VARIANT = sys.argv[2] if len(sys.argv) > 2 else "split"
W, B = 256, 16
DEPTHS = (2, 4, 8, 16, 32, 64)
ACTS = {"relu": jax.nn.relu, "tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid}
INITS = ("glorot_uniform", "he_normal", "burn_default")


def draw(key, init, shape, d_in, d_out):
    """Keras's glorot_uniform and he_normal (truncated at 2 std), Burn's default U(+-1/sqrt(fan_in))."""
    if init == "glorot_uniform":
        lim = (6.0 / (d_in + d_out)) ** 0.5
        return jax.random.uniform(key, shape, jnp.float32, -lim, lim)
    if init == "he_normal":
        std = (2.0 / d_in) ** 0.5 / 0.87962566
        return std * jax.random.truncated_normal(key, -2.0, 2.0, shape, jnp.float32)
    lim = (1.0 / d_in) ** 0.5
    return jax.random.uniform(key, shape, jnp.float32, -lim, lim)


def delta_norms(phi, w_in, w_hidden, w_out, x):
    """||d loss / d z_l|| for every layer of one trial."""
    def loss(e_in, e_hidden, e_out):
        a = phi(x @ w_in + e_in)
        def layer(a, we):
            w, e = we
            return phi(a @ w + e), None
        a, _ = jax.lax.scan(layer, a, (w_hidden, e_hidden))
        z = a @ w_out + e_out
        return jnp.sum(z * z)

    zeros = (jnp.zeros((B, W)), jnp.zeros((w_hidden.shape[0], B, W)), jnp.zeros((B, 1)))
    d_in, d_hidden, d_out = jax.grad(loss, argnums=(0, 1, 2))(*zeros)
    return jnp.concatenate([
        jnp.linalg.norm(d_in)[None],
        jnp.sqrt(jnp.sum(d_hidden * d_hidden, axis=(1, 2))),
        jnp.linalg.norm(d_out)[None],
    ])


def fused(act, depth):
    phi = ACTS[act]

    def trial(key, init):
        k_in, k_hidden, k_out, k_x = jax.random.split(key, 4)
        branches = lambda shape, d_out: [partial(draw, init=i, shape=shape, d_in=W, d_out=d_out) for i in INITS]
        w_in = jax.lax.switch(init, branches((W, W), W), k_in)
        w_hidden = jax.lax.switch(init, branches((depth - 1, W, W), W), k_hidden)
        w_out = jax.lax.switch(init, branches((W, 1), 1), k_out)
        x = jax.random.normal(k_x, (B, W), jnp.float32)
        return delta_norms(phi, w_in, w_hidden, w_out, x)

    return jax.jit(jax.vmap(trial, in_axes=(0, None)))


@partial(jax.jit, static_argnums=(1, 2))
def split_weights(key, init, depth):
    k_in, k_hidden, k_out, k_x = jax.random.split(key, 4)
    return (draw(k_in, init, (TRIALS, W, W), W, W),
            draw(k_hidden, init, (TRIALS, depth - 1, W, W), W, W),
            draw(k_out, init, (TRIALS, W, 1), W, 1),
            jax.random.normal(k_x, (TRIALS, B, W), jnp.float32))


@partial(jax.jit, static_argnums=(0,))
def split_norms(act, w_in, w_hidden, w_out, x):
    return jax.vmap(partial(delta_norms, ACTS[act]))(w_in, w_hidden, w_out, x)


t = time.perf_counter()
if VARIANT == "shared":
    # Each (initialiser, depth)'s weights drawn once and used by all three activations.
    for depth in DEPTHS:
        for init in INITS:
            weights = split_weights(jax.random.key(depth), init, depth)
            for act in ACTS:
                split_norms(act, *weights).block_until_ready()
else:
    for act in ACTS:
        for depth in DEPTHS:
            if VARIANT == "fused":
                f = fused(act, depth)
                for init in range(len(INITS)):
                    keys = jax.random.split(jax.random.key(depth), TRIALS)
                    f(keys, init).block_until_ready()
            else:
                for init in INITS:
                    weights = split_weights(jax.random.key(depth), init, depth)
                    split_norms(act, *weights).block_until_ready()
prng = jax.config.jax_default_prng_impl
print(f"jax notebook sweep ({VARIANT}, {prng}), {TRIALS} trials per point: {time.perf_counter() - t:.1f} s")
