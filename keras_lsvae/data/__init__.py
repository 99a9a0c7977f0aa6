"""tf.data pipelines of keras_lsvae: `prepare`, `load`, `load_arrays`, `info`, `validate_arrays`.

Every data set is registered by name in `keras_lsvae.registry.DATASETS` (see
``DATASETS.names()``): ``digits`` (scikit-learn, embedded), ``shapes`` (procedural, known
factors), ``toy2d`` (Lr-LiVAE §4.1) and ``swiss_roll`` / ``swiss_roll_literal`` (CSVAE §5.1) point data, the TFDS sets
``mnist``, ``fashion_mnist``, ``cifar10``, ``svhn_cropped``/``svhn``, the CelebA attribute subsets
of CSVAE §5.2.2 (``celeb_a``, ``celeb_a_glasses``, ``celeb_a_facial_hair``,
``celeb_a_glasses_facial_hair``), and user data ``npz:<path>`` / ``folder:<path>``. Source options
can follow a ``?`` in the name (``npz:celeba_dev.npz?subset=glasses``,
``npz:celeba_dev.npz?attributes=Eyeglasses,Male``; `keras_lsvae.data.user`); the CelebA subset
rule both kinds of source use is `keras_lsvae.data.celeba`.

Images are float32 NHWC in [0, 1]; point data are float32 (N, D). Labels are int32 class ids or
float32 {0, 1} attribute vectors (``info(name).label_kind``); `single_attribute_as_class` tells
when one binary attribute can serve a class model as 2 classes, `as_attributes` turns any
labels into the float32 (N, A) attribute vectors of attribute models (class data: one-hot).

Call `prepare(name, data_dir, download)` before building anything: TFDS sets are downloaded
there if needed and allowed (see `keras_lsvae.data.tfds_sources`); MNIST and Fashion-MNIST are
resized to 32x32 by default, a size the conv networks take.
"""

from keras_lsvae.data.core import (DatasetInfo, Source, as_attributes,  # noqa: F401
                                   attribute_names, single_attribute_as_class,
                                   validate_arrays)
from keras_lsvae.data.pipeline import (get_source, info, load, load_arrays,  # noqa: F401
                                       prepare)

# Importing the source modules registers their data sets.
from keras_lsvae.data import digits, shapes, tfds_sources, toy, user  # noqa: F401,E402

__all__ = ["DatasetInfo", "Source", "as_attributes", "attribute_names",
           "single_attribute_as_class", "validate_arrays", "get_source",
           "info", "load", "load_arrays", "prepare", "digits", "shapes", "tfds_sources", "toy",
           "user"]
