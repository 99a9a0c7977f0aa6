"""The speed suite's resident-memory numbers at real size (its defaults), as the suite runs them first."""
import json, time
from keras_lsvae.benchmarks import speed as S
T0 = time.time()
orig = S.ResidentMemory.on_epoch_end
def on_epoch_end(self, epoch, logs=None):
    orig(self, epoch, logs); print("epoch", epoch + 1, round(time.time() - T0, 1), "s", round(self.mb[epoch + 1], 1), "MB", flush=True)
S.ResidentMemory.on_epoch_end = on_epoch_end
rss = S.training_rss_mb()
print(json.dumps({"rss_mb_epoch2": rss[2], "rss_mb_epoch10": rss[10], "rss_growth_epoch2_to_10": rss[10] / rss[2] - 1, "peak_rss_mb": S.peak_rss_mb(), "seconds": time.time() - T0}))
