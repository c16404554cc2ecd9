# The notebook's sweep (configs/sweeps/10-sweep-activation-init-depth.toml) in JAX, as a JAX
# user would write it: relu/tanh/sigmoid x glorot_uniform/he_normal/burn_default x depth
# 2..64, width 256, batch 16 N(0,1) inputs, loss sum(out^2), TRIALS seeds per point. One
# jit-compiled function per (activation, depth), the initialiser an argument, the hidden layers
# a lax.scan, vmapped over the trials: it draws the weights and input and returns every layer's ||delta_l|| from zero
# perturbations of the pre-activations (the gradient of a zero added to z_l is d loss / d z_l).
# Compile time is included, as gradscope's start-up is.
# Usage: python sweep_notebook_jax.py [TRIALS]   (default 20)
import sys, time
import jax, jax.numpy as jnp

TRIALS = int(sys.argv[1]) if len(sys.argv) > 1 else 20
W, B = 256, 16
ACTS = {"relu": jax.nn.relu, "tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid}

INITS = ("glorot_uniform", "he_normal", "burn_default")

def draw(key, init, d_in, d_out):
    def glorot(k):
        lim = (6.0 / (d_in + d_out)) ** 0.5
        return jax.random.uniform(k, (d_in, d_out), jnp.float32, -lim, lim)
    def he(k):
        std = (2.0 / d_in) ** 0.5 / 0.87962566
        return std * jax.random.truncated_normal(k, -2.0, 2.0, (d_in, d_out), jnp.float32)
    def burn(k):  # U(+-sqrt(1/fan_in))
        lim = (1.0 / d_in) ** 0.5
        return jax.random.uniform(k, (d_in, d_out), jnp.float32, -lim, lim)
    return jax.lax.switch(init, [glorot, he, burn], key)

def point(act, depth):
    phi = ACTS[act]

    def trial(key, init):
        k_in, k_hidden, k_out, k_x = jax.random.split(key, 4)
        w_in = draw(k_in, init, W, W)
        # The hidden layers as one stack, run with lax.scan: the compiled graph does not
        # grow with depth.
        w_hidden = jax.vmap(lambda k: draw(k, init, W, W))(jax.random.split(k_hidden, depth - 1))
        w_out = draw(k_out, init, W, 1)
        x = jax.random.normal(k_x, (B, W), jnp.float32)

        def loss(eps_in, eps_hidden, eps_out):
            a = phi(x @ w_in + eps_in)
            def layer(a, we):
                w, e = we
                return phi(a @ w + e), None
            a, _ = jax.lax.scan(layer, a, (w_hidden, eps_hidden))
            z = a @ w_out + eps_out
            return jnp.sum(z * z)

        zeros = (jnp.zeros((B, W)), jnp.zeros((depth - 1, B, W)), jnp.zeros((B, 1)))
        d_in, d_hidden, d_out = jax.grad(loss, argnums=(0, 1, 2))(*zeros)
        norms = jnp.concatenate([
            jnp.linalg.norm(d_in)[None],
            jnp.sqrt(jnp.sum(d_hidden * d_hidden, axis=(1, 2))),
            jnp.linalg.norm(d_out)[None],
        ])
        return norms

    return jax.jit(jax.vmap(trial, in_axes=(0, None)))

t = time.perf_counter()
for act in ACTS:
    for depth in (2, 4, 8, 16, 32, 64):
        f = point(act, depth)
        for init in range(len(INITS)):
            keys = jax.random.split(jax.random.PRNGKey(depth), TRIALS)
            f(keys, init).block_until_ready()
print(f"jax notebook sweep, {TRIALS} trials per point: {time.perf_counter() - t:.1f} s")
