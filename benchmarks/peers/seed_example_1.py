# Seed example 1 of shared/seed-relu-gradients.md, verbatim but for the seed (peer for
# workload 1: process start to printed report).
import tensorflow as tf

tf.random.set_seed(1)
model = tf.keras.Sequential([
    tf.keras.layers.Dense(10, activation='relu', input_shape=(10,)),
    tf.keras.layers.Dense(1)
])
x = tf.random.normal((1, 10))
with tf.GradientTape() as tape:
    output = model(x)
    loss = tf.reduce_sum(output**2)
gradients = tape.gradient(loss, model.trainable_variables)
for i, grad in enumerate(gradients):
    print(f"Layer {i+1} Gradient max/min: {tf.reduce_max(grad).numpy():.4f} / {tf.reduce_min(grad).numpy():.4f}")
