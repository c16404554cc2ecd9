# Workload 4 in TensorFlow/Keras: the same 1000 SGD steps as train_jax.py (seed's deep
# network with 10 classes, batch 32, stable cross-entropy on a teacher's labels, fresh N(0,1)
# batches, learning rate 0.01), written as the Keras guide writes a custom loop: a
# GradientTape step, first eagerly (the guide's first version; 200 steps per run, it is slow)
# and then under tf.function (its fast version, 1000 steps per run), the loss read back
# every step. Tracing is excluded (one warm-up step). Prints the median of the runs.
import statistics, time
import tensorflow as tf

def mlp():
    return tf.keras.Sequential(
        [tf.keras.Input((10,))]
        + [tf.keras.layers.Dense(w, activation="relu") for w in (100, 50, 25)]
        + [tf.keras.layers.Dense(10)]
    )

model, teacher = mlp(), mlp()
opt = tf.keras.optimizers.SGD(learning_rate=0.01)
loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)

def eager_step():
    x = tf.random.normal((32, 10))
    labels = tf.argmax(teacher(x), axis=1)
    with tf.GradientTape() as tape:
        loss = loss_fn(labels, model(x, training=True))
    grads = tape.gradient(loss, model.trainable_variables)
    opt.apply_gradients(zip(grads, model.trainable_variables))
    return loss

step = tf.function(eager_step)

def time_steps(f, steps, runs):
    float(f())
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        for _ in range(steps):
            float(f())
        times.append((time.perf_counter() - t) / steps)
    return statistics.median(times)

for name, f, steps, runs in [("eager", eager_step, 200, 3), ("tf.function", step, 1000, 5)]:
    m = time_steps(f, steps, runs)
    print(f"tf train ({name}) {1 / m:.1f} steps/s ({1e3 * m:.3f} ms/step)")
