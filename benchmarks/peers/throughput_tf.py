# Workloads 2 and 3 in TensorFlow/Keras (tf.function), as in throughput_jax.py.
import statistics, time
import tensorflow as tf

def mlp(widths, seed):
    tf.keras.utils.set_random_seed(seed)
    layers = [tf.keras.layers.Dense(w, activation='relu') for w in widths[1:-1]]
    layers.append(tf.keras.layers.Dense(widths[-1]))
    model = tf.keras.Sequential([tf.keras.Input((widths[0],))] + layers)
    return model

@tf.function
def grads(model, x):
    with tf.GradientTape() as tape:
        out = model(x)
        loss = tf.reduce_sum(out * out)
    return tape.gradient(loss, model.trainable_variables)

W, D, B = 1024, 16, 512
model = mlp([W] * (D + 1), 0)
x = tf.random.normal((B, W))
[g.numpy() for g in grads(model, x)]
times = []
for _ in range(5):
    t = time.perf_counter()
    g = grads(model, x)
    g[0].numpy()
    times.append(time.perf_counter() - t)
m = statistics.median(times)
print(f"tf throughput {6 * B * D * W * W / m / 1e9:.1f} GFLOP/s ({m * 1e3:.1f} ms/step)")

widths = [10, 100, 50, 25, 1]
small = mlp(widths, 0)
step = tf.function(lambda x: grads(small, x))
runs = []
for rep in range(3):
    t = time.perf_counter()
    for trial in range(1000):
        # New weights each trial, as a sweep needs: re-initialise in place.
        for layer in small.layers:
            layer.kernel.assign(layer.kernel_initializer(layer.kernel.shape))
            layer.bias.assign(tf.zeros_like(layer.bias))
        xi = tf.random.normal((1, 10))
        [gi.numpy() for gi in step(xi)]
    runs.append(time.perf_counter() - t)
m = statistics.median(runs)
print(f"tf sweep {1000 / m:.1f} trials/s ({m:.3f} ms/trial)")
