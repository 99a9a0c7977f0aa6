"""A/B of real and generated images in separate D / C passes (LabelSplitModel.real_and_fake_passes)
against one pass: weight distance after 3 steps, executed FLOPs, interleaved ms.

    python scripts/probes/ab_split.py lrlivae,cvaegan,cgan 30
"""
import sys, numpy as np, tensorflow as tf, keras
from keras_lsvae.models.base import LabelSplitModel
from keras_lsvae.benchmarks import speed as S
names = sys.argv[1].split(",")
models = {}
orig = LabelSplitModel.real_and_fake_passes
for name in names:
    models[name + "_split"] = S.build(name)
    m, b = S.build(name)
    m.real_and_fake_passes = lambda network, real, fake, training, one_pass=False: orig(
        network, real, fake, training, one_pass=True)
    models[name + "_onepass"] = (m, b)
for name in names:  # 3 steps from the same weights
    print(name, "||w_split - w_onepass|| / ||w_split - w0|| after 3 steps:",
          S.relative_weight_distance(models[name + "_split"], models[name + "_onepass"]))
    a, ba = models[name + "_split"]; f, bf = models[name + "_onepass"]
    print(name, "executed GFLOP split / onepass:", S.train_step_flops(a, ba)[1] / 1e9,
          S.train_step_flops(f, bf)[1] / 1e9)
print(S.interleaved_ms(models, iterations=int(sys.argv[2]) if len(sys.argv) > 2 else 30))
