"""CelebA attribute subsets of CSVAE §5.2.2 (Klys et al., NeurIPS 2018): the one rule that both
the TFDS sources (``celeb_a_glasses``, ... in `keras_lsvae.data.tfds_sources`) and the npz
source (``npz:PATH?subset=glasses``, `keras_lsvae.data.user`) apply, so the two cannot drift.

Applied "independently to each of the training, validation and test split" (each split's
attributes are passed on their own):

* ``glasses``: "all images labelled with the attribute glasses and twice as many images
  without" - CelebA attribute ``Eyeglasses``; 1 label.
* ``facial_hair``: "all images labelled with at least one of the attributes beard, mustache,
  goatee and an equal number of images without" - beard is ``No_Beard == 0``, so the label is
  ``not No_Beard or Mustache or Goatee``; 1 label.
* ``glasses_facial_hair``: "the images from the previous two subsets along with the binary labels
  for both attributes" - the union of both selections, 2 labels (glasses, facial_hair), not
  mutually exclusive.

The images without the attribute are drawn uniformly at random without replacement (all of
them if there are fewer than asked for) by a generator seeded with ``(seed, attribute number)``:
the same attributes and seed always give the same selection, independent of any pipeline seed,
and the union subset holds exactly the images of the two single-attribute subsets. Selected
images keep their split order.
"""

from __future__ import annotations

from typing import Dict, Mapping, Tuple

import numpy as np

from keras_lsvae.data.core import check_int

#: The CelebA attributes (names of ``list_attr_celeba.txt`` and of TFDS ``celeb_a``) the rule reads.
SOURCE_ATTRIBUTES = ("Eyeglasses", "No_Beard", "Mustache", "Goatee")
#: Default seed of the draw of the images without the attribute.
SELECTION_SEED = 0

# Derived binary attributes of CSVAE §5.2.2 from CelebA's boolean attributes.
DERIVED_ATTRIBUTES = {
    "glasses": lambda a: a["Eyeglasses"],
    "facial_hair": lambda a: ~a["No_Beard"] | a["Mustache"] | a["Goatee"],
}
# How many images without the attribute per image with it (paper: "twice as many", "equal").
NEGATIVES_PER_POSITIVE = {"glasses": 2, "facial_hair": 1}
# subset -> its derived attributes, in label-column order. A subset with several attributes is
# the union of the single-attribute subsets, labelled with all of them.
SUBSET_ATTRIBUTES = {
    "glasses": ("glasses",),
    "facial_hair": ("facial_hair",),
    "glasses_facial_hair": ("glasses", "facial_hair"),
}
SUBSETS = tuple(SUBSET_ATTRIBUTES)


def check_subset(subset, source: str = "celeb_a") -> str:
    """``subset`` if it is one of `SUBSETS`, else a ValueError listing them."""
    if not isinstance(subset, str) or subset not in SUBSET_ATTRIBUTES:
        raise ValueError(f"{source}: unknown subset {subset!r}; known: {', '.join(SUBSETS)}")
    return subset


def _choose_negatives(negatives: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` of the candidate indices uniformly at random (all if fewer), in split order."""
    if count >= negatives.size:
        return negatives
    return np.sort(rng.choice(negatives, size=count, replace=False))


def selection(attributes: Mapping[str, np.ndarray], subset: str, seed: int = SELECTION_SEED,
              source: str = "celeb_a") -> Tuple[np.ndarray, np.ndarray]:
    """Indices into the split (int64, increasing) and their float32 labels (n, A) for a CSVAE
    §5.2.2 subset of one split.

    Args:
        attributes: boolean or {0, 1} arrays (N,) of the split for `SOURCE_ATTRIBUTES`
            (other keys are ignored).
        subset: one of `SUBSETS`.
        seed: seed of the draw of the images without the attribute (integer >= 0).
        source: the data set named in errors.
    """
    check_subset(subset, source)
    seed = check_int("subset_seed", seed, minimum=0, source=source)
    missing = [name for name in SOURCE_ATTRIBUTES if name not in attributes]
    if missing:
        raise ValueError(f"{source}: subset {subset!r} needs the CelebA attributes "
                         f"{', '.join(SOURCE_ATTRIBUTES)}; missing: {', '.join(missing)}")
    raw: Dict[str, np.ndarray] = {}
    for name in SOURCE_ATTRIBUTES:
        values = np.asarray(attributes[name])
        if values.ndim != 1:
            raise ValueError(f"{source}: attribute {name} must have shape (N,), got "
                             f"{values.shape}")
        if values.dtype != np.bool_ and not np.all((values == 0) | (values == 1)):
            raise ValueError(f"{source}: attribute {name} has values other than 0 and 1")
        raw[name] = values.astype(bool)
    if len({values.size for values in raw.values()}) > 1:
        raise ValueError(f"{source}: the attributes have different lengths "
                         f"{ {k: v.size for k, v in raw.items()} }")
    columns, index = [], np.zeros(0, dtype=np.int64)
    for attribute in SUBSET_ATTRIBUTES[subset]:
        positive = DERIVED_ATTRIBUTES[attribute](raw)
        positives = np.flatnonzero(positive)
        # One generator per attribute, so the union subset contains exactly the images of the
        # single-attribute subsets.
        rng = np.random.default_rng([seed, list(DERIVED_ATTRIBUTES).index(attribute)])
        negatives = _choose_negatives(np.flatnonzero(~positive),
                                      NEGATIVES_PER_POSITIVE[attribute] * positives.size, rng)
        index = np.union1d(index, np.union1d(positives, negatives))
        columns.append(positive)
    labels = np.stack([column[index] for column in columns], axis=1).astype(np.float32)
    return index.astype(np.int64), labels
