"""A/B of the decoders' output conv (layers.Conv2D) and the fused Adam (optimizers.Adam) against
Keras' Conv2D and Adam: same weights and batch, weight distance after 3 steps, interleaved ms.

    python scripts/probes/ab_conv_adam.py lrlivae,vae 30
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
    print(name, "||w_new - w_stock|| / ||w_new - w0|| after 3 steps:",
          S.relative_weight_distance(models[name + "_new"], models[name + "_stock"]))
print(S.interleaved_ms(models, iterations=int(sys.argv[2]) if len(sys.argv) > 2 else 30))
