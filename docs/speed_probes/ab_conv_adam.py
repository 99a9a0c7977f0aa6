"""A/B of the decoders' output conv (layers.Conv2D) and the fused Adam (optimizers.Adam) against
Keras' Conv2D and Adam: same weights and batch, weight distance after 3 steps, interleaved ms.

    python docs/speed_probes/ab_conv_adam.py lrlivae,vae 30
"""
import sys, numpy as np, tensorflow as tf, keras
from keras_lsvae import layers as L, optimizers as O
from keras_lsvae.benchmarks import speed as S
names = sys.argv[1].split(",")
models = {}
for name in names:
    models[name + "_new"] = S.build(name)
    oc, oa = L.Conv2D, O.Adam
    L.Conv2D, O.Adam = keras.layers.Conv2D, keras.optimizers.Adam
    try:
        models[name + "_stock"] = S.build(name)
    finally:
        L.Conv2D, O.Adam = oc, oa
    print(name, {type(o).__module__ for o in models[name + "_new"][0].objective_optimizers.values()},
          {type(o).__module__ for o in models[name + "_stock"][0].objective_optimizers.values()})
for name in names:  # 3 steps from the same weights
    a, ba = models[name + "_new"]; f, bf = models[name + "_stock"]
    ra, rf = S.iteration_runner(a), S.iteration_runner(f)
    ita = iter(tf.data.Dataset.from_tensors(ba).repeat()); itf = iter(tf.data.Dataset.from_tensors(bf).repeat())
    w0 = [v.numpy() for v in a.trainable_variables]
    for _ in range(3): ra(ita); rf(itf)
    num = np.sqrt(sum(np.sum((x.numpy() - y.numpy())**2) for x, y in zip(a.trainable_variables, f.trainable_variables)))
    den = np.sqrt(sum(np.sum((x.numpy() - w)**2) for x, w in zip(a.trainable_variables, w0)))
    print(name, "||w_new - w_stock|| / ||w_new - w0|| after 3 steps:", num / den)
print(S.interleaved_ms(models, iterations=int(sys.argv[2]) if len(sys.argv) > 2 else 30))
