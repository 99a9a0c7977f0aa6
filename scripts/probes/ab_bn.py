"""Interleaved A/B: Lr-LiVAE train function with Keras' synchronized batch norm (before) vs
keras_lsvae.layers.BatchNormalization (fused on one replica), same weights, same batch."""
import sys, keras
from keras_lsvae import layers as L
from keras_lsvae.benchmarks import speed as S

def keras_batch_norm(**kwargs):  # the code before the change
    kwargs.setdefault("momentum", L.BN_MOMENTUM)
    return keras.layers.BatchNormalization(synchronized=True, **kwargs)

fused = L.batch_norm
L.batch_norm = keras_batch_norm
NAME = sys.argv[2] if len(sys.argv) > 2 else "lrlivae"
before = S.build(NAME)
L.batch_norm = fused
after = S.build(NAME)
assert not any(isinstance(l, L.BatchNormalization) for net in before[0].layers if isinstance(net, keras.Model) for l in net.layers)
assert any(isinstance(l, L.BatchNormalization) for net in after[0].layers if isinstance(net, keras.Model) for l in net.layers)
iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 30
for run in range(2):
    ms = S.interleaved_ms({"keras_bn": before, "fused_bn": after}, iterations=iterations, warmup=3)
    print("run", run, {k: round(v, 1) for k, v in ms.items()}, "fused/keras", round(ms["fused_bn"] / ms["keras_bn"], 3), flush=True)
