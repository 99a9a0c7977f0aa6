"""A/B of real and generated images in separate D / C passes (LabelSplitModel.real_and_fake_passes)
against one pass: weight distance after 3 steps, executed FLOPs, interleaved ms.

    python docs/speed_probes/ab_split.py lrlivae,cvaegan,cgan 30
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
for name in names:
    a, ba = models[name + "_split"]; f, bf = models[name + "_onepass"]
    ra, rf = S.iteration_runner(a), S.iteration_runner(f)
    ita = iter(tf.data.Dataset.from_tensors(ba).repeat()); itf = iter(tf.data.Dataset.from_tensors(bf).repeat())
    w0 = [v.numpy() for v in a.trainable_variables]
    for _ in range(3): ra(ita); rf(itf)
    num = np.sqrt(sum(np.sum((x.numpy() - y.numpy())**2) for x, y in zip(a.trainable_variables, f.trainable_variables)))
    den = np.sqrt(sum(np.sum((x.numpy() - w)**2) for x, w in zip(a.trainable_variables, w0)))
    print(name, "||w_split - w_onepass|| / ||w_split - w0|| after 3 steps:", num / den)
    print(name, "executed GFLOP split / one pass:", S.train_step_flops(a, ba)[1] / 1e9, S.train_step_flops(f, bf)[1] / 1e9)
print(S.interleaved_ms(models, iterations=int(sys.argv[2]) if len(sys.argv) > 2 else 30))
