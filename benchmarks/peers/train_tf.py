# Workload 4 in TensorFlow/Keras: the same 1000 SGD steps as train_jax.py (seed's deep
# network with 10 classes, batch 32, stable cross-entropy on a teacher's labels, fresh N(0,1)
# batches, learning rate 0.01), written as the Keras docs write a custom loop: a GradientTape
# step under tf.function, the loss read back every step. Compile time is excluded (one
# warm-up step). Prints the median of 5 runs.
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

@tf.function
def step():
    x = tf.random.normal((32, 10))
    labels = tf.argmax(teacher(x), axis=1)
    with tf.GradientTape() as tape:
        loss = loss_fn(labels, model(x, training=True))
    grads = tape.gradient(loss, model.trainable_variables)
    opt.apply_gradients(zip(grads, model.trainable_variables))
    return loss

float(step())
runs = []
for _ in range(5):
    t = time.perf_counter()
    for _ in range(1000):
        float(step())
    runs.append(time.perf_counter() - t)
m = statistics.median(runs)
print(f"tf train {1000 / m:.1f} steps/s ({m:.3f} ms/step)")
