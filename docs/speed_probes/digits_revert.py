"""The digits quality suite with some of session 8's speed changes reverted, to tell seed-level
variance from a systematic effect (docs/benchmarks.md, lrlivae_digits_seeds, "Session 9").

    python docs/speed_probes/digits_revert.py conv,adam,split 0 1 OUT_DIR

revert: comma list of conv (Keras' Conv2D for the decoder output), adam (Keras' Adam), split
(real and fake rows in one D / C pass), or none; then the first seed and the number of seeds.
"""
import json, os, sys
import keras
from keras_lsvae import layers as L, optimizers as O
from keras_lsvae.models.base import LabelSplitModel
from keras_lsvae.benchmarks.lrlivae import lrlivae_digits_seeds

revert = set(filter(None, sys.argv[1].split(","))) - {"none"}
assert revert <= {"conv", "adam", "split"}, revert
if "conv" in revert:
    L.Conv2D = keras.layers.Conv2D
if "adam" in revert:
    O.Adam = keras.optimizers.Adam
if "split" in revert:
    _split = LabelSplitModel.real_and_fake_passes
    LabelSplitModel.real_and_fake_passes = staticmethod(
        lambda network, real, fake, training, one_pass=False: _split(
            network, real, fake, training, one_pass=True))
out = sys.argv[4]
os.makedirs(out, exist_ok=True)
result = lrlivae_digits_seeds(out, seed=int(sys.argv[2]), num_seeds=int(sys.argv[3]))
result["reverted"] = sorted(revert)
with open(os.path.join(out, "lrlivae_digits_seeds.json"), "w") as f:
    json.dump(result, f, indent=1, default=str)
for run in result["runs"]:
    print("REVERT", sorted(revert), "seed", run["seed"], {k: round(run[k], 3) for k in (
        "zs_accuracy", "zu_leakage_accuracy", "conditional_accuracy", "swap_consistency",
        "recon_mse")})
