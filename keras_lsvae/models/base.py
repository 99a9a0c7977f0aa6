"""Shared machinery of every model: input validation, multi-optimizer compile, replica-correct
updates, loss trackers, batched inference.

Why the replica scaling: Keras optimizers **sum** gradients across replicas under
``MirroredStrategy``. A per-replica loss that is a mean over the local batch therefore applies R
times the update of one replica on the same global batch (measured, DESIGN.md). Every objective
is divided by ``num_replicas_in_sync`` before differentiation (:meth:`apply_objective`), which
makes 1- and 2-replica updates identical (tests/test_distribute.py).
"""

from __future__ import annotations

from typing import Dict, List, Sequence

import keras
import numpy as np
import tensorflow as tf

from keras_lsvae import optimizers
from keras_lsvae.models import extensions as extensions_lib
from keras_lsvae.layers import SavesSeedStates, batch_normal


class Term:
    """One loss term of one step, declared once: its ``value`` (a scalar, logged under
    ``name``), the objectives (optimizers) it enters with their ``weights``, and ``via``: for
    an objective that the term reaches only through a network input that was cut
    (:meth:`Terms.cut`), the cut tensors it goes through. A term reaches every objective not
    named in ``via`` directly, through its own graph; those direct weights must be equal (one
    backward pass carries them). An objective absent from ``weights`` must not be reachable
    from the term except through a cut or a stop-gradient: declaring that is what the cuts are
    for (tests/test_backward_once.py checks both derivations against each other)."""

    __slots__ = ("name", "value", "weights", "via")

    def __init__(self, name, value, weights, via=None):
        self.name, self.value = name, value
        self.weights = {objective: float(weight) for objective, weight in weights.items()}
        self.via = {objective: list(cuts) for objective, cuts in (via or {}).items()}
        unknown = set(self.via) - set(self.weights)
        if unknown:
            raise ValueError(f"term {name!r}: 'via' names objectives without a weight: "
                             f"{sorted(unknown)}")

    def direct_weight(self):
        """The weight of the objectives the term reaches directly (None if it reaches none)."""
        weights = {w for objective, w in self.weights.items() if objective not in self.via}
        if len(weights) > 1:
            raise ValueError(
                f"term {self.name!r} reaches objectives "
                f"{sorted(o for o in self.weights if o not in self.via)} directly with "
                f"different weights {sorted(weights)}: one backward pass cannot weigh them "
                "apart; cut the network input between them (Terms.cut) and declare 'via'")
        return weights.pop() if weights else None


class Terms:
    """The loss terms of one step (:class:`Term`), in declaration order, and the values that
    are only logged. A model's ``compute_losses`` fills one and returns it; the base class
    derives from it every objective's loss (:meth:`objectives`, the per-objective reference
    path) and the shared backward passes (:meth:`LabelSplitModel.apply_terms`).

    ``tape``: the step's persistent tape when training with ``backward_once``; then
    :meth:`cut` makes stop-gradient copies that the tape watches. Without a tape (evaluation,
    the per-objective path) a cut is the tensor itself."""

    def __init__(self, tape=None):
        self.tape = tape
        self.items: List[Term] = []
        self.logs: Dict[str, tf.Tensor] = {}
        self._sources = {}
        #: the codes a latent adversary read this step (for extra adversary steps)
        self.adversary_codes = None

    def cut(self, tensor):
        """``tensor`` as another network's input: with a tape, a watched stop-gradient copy
        whose gradient the backward pass carries to ``tensor`` with the weight of the
        objective that produced it (``via``); without one, ``tensor`` itself."""
        if self.tape is None:
            return tensor
        copy = tf.stop_gradient(tensor)
        self.tape.watch(copy)
        self._sources[copy.ref()] = tensor
        return copy

    def source(self, cut):
        return self._sources[cut.ref()]

    def add(self, name, value, weights, via=None, log=True):
        """Declare a term (see :class:`Term`); it is logged under ``name`` unless ``log`` is
        False. Returns ``value``."""
        if any(term.name == name for term in self.items):
            raise ValueError(f"loss term {name!r} declared twice in one step")
        self.items.append(Term(name, value, weights, via))
        if log:
            self.logs[name] = value
        return value

    def log(self, **values):
        """Values that are logged but enter no objective (accuracies, sums for display)."""
        self.logs.update(values)

    def objective_names(self, order):
        """The objectives (in ``order``) that at least one term enters."""
        entered = {objective for term in self.items for objective in term.weights}
        return [name for name in order if name in entered]

    def objectives(self):
        """{objective: Σ weight · term} over the terms that enter it (declaration order)."""
        sums = {}
        for term in self.items:
            for objective, weight in term.weights.items():
                part = term.value if weight == 1.0 else weight * term.value
                sums[objective] = part if objective not in sums else sums[objective] + part
        return sums

    def weighted_sum(self, objective):
        """Σ weight · term of one objective (0.0 if no term enters it)."""
        return self.objectives().get(objective, 0.0)


class LabelSplitModel(SavesSeedStates, keras.Model):
    """Base class of the models: see the module docstring.

    Subclasses define ``OBJECTIVES`` (the names of their optimizers, in order), implement
    :meth:`objective_variables` (name -> variable list), ``compute_losses`` and ``train_step``.

    Args:
        input_shape: shape of one example: (H, W, C) images in [0, 1], or (D,) vectors.
        num_classes: K for class labels (or the number of attributes for attribute models).
        seed: seeds every ``SeedGenerator`` of the model (posterior and prior sampling).
            Weight initialisers follow Keras' global seed, as Keras layers do: call
            ``keras.utils.set_random_seed`` before building for reproducible weights
            (``keras_lsvae.training.train`` does).
    """

    OBJECTIVES: Sequence[str] = ()
    #: what the labels are: "class" (int class ids, (B,)) or "attributes" ({0,1} (B, A)).
    label_kind = "class"
    #: examples per row that ``train_step`` expects (data.load(group=...)); see LrLiVAE.
    data_group = 1

    #: the extension sites this model offers (keras_lsvae/models/extensions.py)
    EXTENSION_SITES: Sequence[str] = ()

    def __init__(self, input_shape, num_classes, seed=0, extensions=None, **kwargs):
        super().__init__(**kwargs)
        self.extensions = extensions_lib.build(type(self), extensions)
        if isinstance(input_shape, (str, bytes)) or not np.iterable(input_shape):
            raise ValueError(f"input_shape must be (H, W, C) for images or (D,) for vectors, "
                             f"got {input_shape!r}")
        self.example_shape = self.check_sizes("input_shape", input_shape)
        if len(self.example_shape) not in (1, 3):
            raise ValueError(
                f"input_shape must be (H, W, C) for images or (D,) for vectors, got {input_shape}")
        self.is_image = len(self.example_shape) == 3
        self.num_classes = self.check_positive("num_classes", num_classes)
        self.seed = self.check_seed(seed)
        self._trackers: Dict[str, keras.metrics.Mean] = {}
        self._compile_kwargs = {}

    # ----------------------------------------------------------------------------- validation
    def check_images(self, images, name="images"):
        """Validate eagerly: real numbers (not strings or bools) of shape (N, *example_shape),
        finite, and in [0, 1] for images."""
        kind = np.asarray(images).dtype.kind
        if kind not in "iuf":
            raise ValueError(f"{name}: expected float32 values, got dtype "
                             f"{np.asarray(images).dtype}")
        array = np.asarray(images, dtype=np.float32)
        if array.ndim != len(self.example_shape) + 1 or array.shape[1:] != self.example_shape:
            raise ValueError(
                f"{name}: expected shape (N, {', '.join(map(str, self.example_shape))}), "
                f"got {array.shape}")
        if array.shape[0] == 0:
            raise ValueError(f"{name}: empty batch")
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{name}: contains NaN or infinite values")
        if self.is_image and (array.min() < 0.0 or array.max() > 1.0):
            raise ValueError(
                f"{name}: values must lie in [0, 1] (float32), got range "
                f"[{array.min():.3g}, {array.max():.3g}]; divide uint8 images by 255")
        return tf.convert_to_tensor(array)

    #: what ``_check_pair`` expects one of per image (AttributeModel: an attribute row)
    _target_unit = "class id"

    def _check_targets(self, targets, name):
        return self.check_labels(targets, name)

    def _check_pair(self, images, targets, name="labels"):
        """``(check_images(images), checked targets)`` with one target per image: class ids
        here (``check_labels``), attribute rows in AttributeModel (``check_attributes``)."""
        images = self.check_images(images)
        targets = self._check_targets(targets, name)
        if images.shape[0] != targets.shape[0]:
            raise ValueError(f"{name}: expected one {self._target_unit} per image "
                             f"({images.shape[0]}), got {targets.shape[0]}")
        return images, targets

    def check_unused_labels(self, images, labels, name="labels"):
        """Labels that a uniform call takes but the model does not read: checked all the same
        (one valid label per image) when given, so that wrong labels never pass silently."""
        if labels is not None:
            self._check_pair(images, labels, name)

    def check_labels(self, labels, name="labels"):
        """Validate eagerly: a non-empty vector of integer class ids in [0, num_classes), of an
        integer dtype (floats, even whole ones, bools and strings are refused), range-checked
        before the cast to int32 (no wraparound of int64/uint values)."""
        array = np.asarray(labels)
        if array.ndim != 1:
            raise ValueError(f"{name}: expected a 1-D vector of class ids, got shape {array.shape}")
        if array.size == 0:
            raise ValueError(f"{name}: empty; expected at least one class id in "
                             f"[0, {self.num_classes})")
        if array.dtype.kind == "f":
            raise ValueError(f"{name}: class ids must be integers (an integer dtype), got "
                             f"{array.dtype} values such as {array.flat[0]!r}; cast whole "
                             f"numbers with .astype(int)")
        if array.dtype.kind not in "iu":  # bool, str, object (Python ints beyond 64 bits)
            raise ValueError(f"{name}: expected integer class ids in [0, {self.num_classes}), "
                             f"got {array.dtype} values such as {array.flat[0]!r}")
        # The range in the labels' own dtype, before the cast: int32(2**32 + 3) is 3.
        low, high = array.min(), array.max()
        if low < 0 or high >= self.num_classes:
            raise ValueError(
                f"{name}: class ids must lie in [0, {self.num_classes}), got range "
                f"[{low}, {high}]")
        return tf.convert_to_tensor(array.astype(np.int32))

    # Scalars are checked for their type before any conversion: ``int(4.5)``, ``int("4")``,
    # ``int(True)`` and ``int(3.7)`` would silently give 4, 4, 1 and 3.
    @staticmethod
    def _scalar(value):
        """A 0-d array or tensor as its numpy scalar; anything else unchanged."""
        if isinstance(value, (np.ndarray, tf.Tensor)) and np.ndim(value) == 0:
            return np.asarray(value)[()]
        return value

    @classmethod
    def _is_integer(cls, value):
        value = cls._scalar(value)
        return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))

    @classmethod
    def _real(cls, value):
        """A Python/numpy int or float (not bool) as a finite Python float, else None."""
        number = cls._scalar(value)
        if (isinstance(number, (bool, np.bool_))
                or not isinstance(number, (int, float, np.integer, np.floating))):
            return None
        try:
            number = float(number)
        except OverflowError:
            return None
        return number if np.isfinite(number) else None

    @classmethod
    def check_integer(cls, name, value, minimum=1):
        """``value`` as a Python int >= ``minimum``, or a ValueError naming ``name``. Only
        Python/numpy integers (or 0-d integer arrays) pass: bools, floats (even 4.0) and strings
        are refused, not converted."""
        kind = {0: "a non-negative integer", 1: "a positive integer"}.get(
            minimum, f"an integer >= {minimum}")
        if not cls._is_integer(value) or cls._scalar(value) < minimum:
            raise ValueError(f"{name} must be {kind}, got {value!r} "
                             f"({type(value).__name__})")
        return int(cls._scalar(value))

    @classmethod
    def check_positive(cls, name, value, integer=True):
        """``value`` as a Python int (``integer``: :meth:`check_integer`) or a finite Python
        float > 0, or a ValueError naming ``name``. Numbers must be ints or floats (Python or
        numpy): bools and strings are refused, not converted."""
        if integer:
            return cls.check_integer(name, value, minimum=1)
        number = cls._real(value)
        if number is None or number <= 0:
            raise ValueError(f"{name} must be a positive number, got {value!r} "
                             f"({type(value).__name__})")
        return number

    @classmethod
    def check_sizes(cls, name, values, minimum=1, allow_empty=False):
        """A sequence of sizes (layer widths, a shape) as a tuple of Python ints, each checked
        by :meth:`check_integer`; a ValueError naming ``name`` (and the entry) otherwise."""
        if isinstance(values, (str, bytes, dict)) or not np.iterable(values):
            raise ValueError(f"{name} must be a sequence of positive integers, got {values!r}")
        sizes = tuple(cls.check_integer(f"{name}[{i}]", v, minimum)
                      for i, v in enumerate(values))
        if not sizes and not allow_empty:
            raise ValueError(f"{name} must have at least one entry, got {values!r}")
        return sizes

    #: seeds lie in [0, SEED_LIMIT) (Keras' random seeds are conceptually uint32 values)
    SEED_LIMIT = 2**32

    @classmethod
    def check_seed(cls, seed, name="seed", optional=False):
        """``seed`` as a Python int in [0, 2**32), or None if ``optional`` and it is None;
        else a ValueError naming ``name``. Bools, floats (3.7 would act as 3) and strings are
        refused, not converted."""
        if seed is None and optional:
            return None
        if not cls._is_integer(seed) or not 0 <= cls._scalar(seed) < cls.SEED_LIMIT:
            raise ValueError(f"{name} must be {'None or ' if optional else ''}an integer in "
                             f"[0, 2**32), got {seed!r} ({type(seed).__name__})")
        return int(cls._scalar(seed))

    @staticmethod
    def check_finite(values, name, allow_bool=False):
        """Real-valued input (codes, noise, fill values, grid points, scales, ...) as a float32
        numpy array of any shape: integer or floating dtype (strings, objects, complex numbers
        and, unless ``allow_bool``, bools are refused, not converted) and finite values once in
        float32 (NaN, ±inf and values beyond float32's range are refused); else a ValueError
        naming ``name``."""
        array = values if isinstance(values, np.ndarray) else np.asarray(values)
        kinds = "biuf" if allow_bool else "iuf"
        if array.dtype.kind not in kinds:
            raise ValueError(f"{name}: expected real numbers, got dtype {array.dtype}"
                             + (f" values such as {array.flat[0]!r}" if array.size else ""))
        with np.errstate(over="ignore", invalid="ignore"):
            array = array.astype(np.float32)
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{name}: contains NaN or infinite values (or values beyond "
                             f"float32's range)")
        return array

    @classmethod
    def check_number(cls, name, value, minimum=None):
        """A finite real scalar (Python/numpy int or float, not bool or str) as a Python float,
        >= ``minimum`` if given; else a ValueError naming ``name``."""
        number = cls._real(value)
        if number is None:
            raise ValueError(f"{name} must be a finite number, got {value!r} "
                             f"({type(value).__name__})")
        if minimum is not None and number < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
        return number

    @staticmethod
    def check_choice(name, value, choices):
        """``value`` if it is one of ``choices``, else a ValueError naming the option."""
        if value not in choices:
            raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
        return value

    def check_codes(self, codes, dim, name):
        """Real-valued (N, dim) latent or label codes for ``decode``: finite, float32
        (:meth:`check_finite`)."""
        array = self.check_finite(codes, name)
        if array.ndim != 2 or array.shape[-1] != dim or array.shape[0] == 0:
            raise ValueError(f"{name}: expected shape (N, {dim}) with N >= 1, got {array.shape}")
        return tf.convert_to_tensor(array)

    def check_mask(self, mask, images):
        """An inpainting mask for ``images`` (checked images, (N, H, W, C)): a name from
        :data:`keras_lsvae.masks.MASK_KINDS` or an array of shape (H, W), (H, W, 1) or
        (N, H, W, 1|C) with 1 on missing and 0 on kept pixels; returned as (1|N, H, W, 1|C)."""
        from keras_lsvae import masks as masks_lib

        if not self.is_image:
            raise ValueError("inpaint needs image data")
        if isinstance(mask, str):
            mask = masks_lib.make_mask(mask, *self.example_shape[:2])
        mask = np.asarray(mask, np.float32)
        if mask.ndim == 2:
            mask = mask[..., None]
        if mask.ndim == 3:
            mask = mask[None]
        height, width, channels = self.example_shape
        if (mask.ndim != 4 or mask.shape[1:3] != (height, width)
                or mask.shape[3] not in (1, channels)
                or mask.shape[0] not in (1, images.shape[0])):
            raise ValueError(f"mask: expected shape (H, W), (H, W, 1) or (N, H, W, 1|C) with "
                             f"H, W = {height}, {width}, N = {images.shape[0]}; got "
                             f"{np.asarray(mask).shape}")
        if not np.all((mask == 0) | (mask == 1)):
            raise ValueError("mask: values must be 0 (kept) or 1 (missing)")
        return tf.convert_to_tensor(mask)

    def masked_input(self, images, mask, fill_value=0.0):
        """(images, mask, corrupted): checked images, the checked mask and the images with
        their missing pixels set to ``fill_value`` (a scalar or an (H, W, C) image such as the
        data mean): what every model's ``inpaint`` starts from (Lr-LiVAE §4.5, Fig. 7)."""
        images = self.check_images(images)
        mask = self.check_mask(mask, images)
        fill = self.check_fill_value(fill_value)
        return images, mask, images * (1.0 - mask) + fill * mask

    def check_fill_value(self, fill_value, name="fill_value"):
        """The value of the missing pixels: a scalar or an (H, W, C) image, finite
        (:meth:`check_finite`) and in [0, 1] like the images."""
        fill = self.check_finite(fill_value, name)
        if fill.shape not in ((), self.example_shape):
            raise ValueError(f"{name}: expected a scalar or an image of shape "
                             f"{self.example_shape}, got shape {fill.shape}")
        if fill.min() < 0.0 or fill.max() > 1.0:
            raise ValueError(f"{name}: values must lie in [0, 1] like the images, got range "
                             f"[{fill.min():.3g}, {fill.max():.3g}]")
        return tf.convert_to_tensor(fill)

    def check_batch(self, images, labels=None):
        """In-graph checks of a training/evaluation batch, for data that would otherwise train
        silently wrong: returns (images, labels as int32).

        Static (a ValueError when the step is traced): integer images (uint8: not scaled to
        [0, 1]) and labels of the wrong rank (one-hot labels where class ids are expected; a
        grouped batch (B, G, ...) has labels (B, G)). In-graph (``tf.debugging`` assertions,
        which ``fit``/``evaluate`` raise as ``InvalidArgumentError`` naming the problem):
        NaN/inf pixels, images outside [0, 1], class ids outside [0, num_classes) or not
        whole numbers. They cost one min/max reduction each (measured: no difference in step
        time, docs/design.md)."""
        images = tf.convert_to_tensor(images)
        if not images.dtype.is_floating:
            raise ValueError(
                f"images: expected floating-point values{' in [0, 1]' if self.is_image else ''}"
                f", got dtype {images.dtype.name}"
                + ("; divide uint8 images by 255 (keras_lsvae.data.load does)"
                   if self.is_image else ""))
        images = tf.debugging.assert_all_finite(images, "images: contain NaN or infinite values")
        checks = []
        if self.is_image:
            checks += [
                tf.debugging.assert_greater_equal(
                    tf.reduce_min(images), tf.constant(0, images.dtype),
                    message="images: values must lie in [0, 1], found a value below 0"),
                tf.debugging.assert_less_equal(
                    tf.reduce_max(images), tf.constant(1, images.dtype),
                    message="images: values must lie in [0, 1], found a value above 1 (uint8 "
                            "range? divide by 255)")]
        if labels is not None:
            labels = tf.convert_to_tensor(labels)
            # Unknown ranks (a relaxed retrace) cannot be checked statically.
            rank = (None if images.shape.rank is None
                    else images.shape.rank - len(self.example_shape))
            if None not in (rank, labels.shape.rank) and labels.shape.rank != rank:
                expected = "(B,)" if rank == 1 else "(B, G) for images of shape (B, G, ...)"
                raise ValueError(
                    f"labels: expected class ids of shape {expected}, got shape "
                    f"{tuple(labels.shape)} for images of shape {tuple(images.shape)}"
                    + ("; one-hot labels? pass the class ids (argmax)"
                       if labels.shape.rank == rank + 1 else ""))
            if labels.dtype.is_floating:
                checks.append(tf.debugging.assert_equal(
                    labels, tf.round(labels), message="labels: class ids must be integers"))
            elif not labels.dtype.is_integer:
                raise ValueError(f"labels: expected integer class ids, got {labels.dtype.name}")
            # The range in the labels' own dtype, before the cast: int32(2**32 + 3) is 3.
            message = f"labels: class ids must lie in [0, {self.num_classes})"
            checks += [
                tf.debugging.assert_greater_equal(tf.reduce_min(labels),
                                                  tf.constant(0, labels.dtype), message),
                tf.debugging.assert_less(tf.reduce_max(labels),
                                         tf.constant(self.num_classes, labels.dtype), message)]
            labels = tf.cast(labels, tf.int32)
        with tf.control_dependencies(checks):
            return tf.identity(images), (None if labels is None else tf.identity(labels))

    # ------------------------------------------------------------------------------ compile
    OPTIMIZERS = ("adam", "sgd")

    def make_optimizer(self, name, kind, learning_rate, beta_1, beta_2, loss_scale=False):
        """Objective ``name``'s optimizer; ``loss_scale`` wraps it in Keras'
        ``LossScaleOptimizer`` (dynamic loss scaling, for float16 compute)."""
        if kind == "adam":
            optimizer = optimizers.Adam(learning_rate, beta_1=beta_1, beta_2=beta_2,
                                        name=f"{name}_optimizer")
        elif kind == "sgd":
            optimizer = keras.optimizers.SGD(learning_rate, name=f"{name}_optimizer")
        else:
            raise ValueError(f"unknown optimizer {kind!r}; known: {self.OPTIMIZERS}")
        if loss_scale:
            optimizer = keras.optimizers.LossScaleOptimizer(
                optimizer, name=f"{name}_loss_scale_optimizer")
        return optimizer

    def float32_outputs(self):
        """Under a mixed policy: the networks' output layers and the model's own layers
        (samplers, priors) compute in float32, so that every loss is computed in float32
        (Keras' mixed-precision guide: outputs in float32); the networks' other layers keep the
        mixed policy (float16/bfloat16 compute, float32 variables)."""
        if self.dtype_policy.compute_dtype == "float32":
            return
        for layer in self._flatten_layers(include_self=False, recursive=False):
            if isinstance(layer, keras.Model) and hasattr(layer, "outputs"):
                producers = {id(t._keras_history.operation): t._keras_history.operation
                             for t in keras.tree.flatten(layer.outputs)}
                for producer in producers.values():
                    producer.dtype_policy = "float32"
            else:
                layer.dtype_policy = "float32"

    def compile(self, learning_rate=5e-4, beta_1=0.5, beta_2=0.999, learning_rates=None,
                optimizer="adam", jit_compile=False, auto_scale_loss=True, **kwargs):
        """One optimizer per objective (Algorithm 1 lines 25–29 give each sub-network its own),
        built here on its variable list so no variable is created inside a step.

        ``learning_rates`` overrides the rate per objective name (e.g. {"gm_variance": 5e-5}).
        ``optimizer`` is "adam" (the paper's) or "sgd" (its updates are proportional to the
        gradient, which the replica-parity test needs: Adam hides a gradient scale error).
        ``auto_scale_loss`` (as in ``keras.Model.compile``): under the "mixed_float16" policy
        every optimizer is a ``LossScaleOptimizer`` (float16 gradients underflow otherwise;
        bfloat16 has float32's range and needs none); see :meth:`loss_scale`.
        """
        overrides = self.extension_learning_rates(learning_rate, learning_rates)
        unknown = set(overrides) - set(self.OBJECTIVES)
        if unknown:
            raise ValueError(
                f"unknown objectives {sorted(unknown)}; known: {list(self.OBJECTIVES)}")
        self.objective_optimizers = {}
        self.float32_outputs()
        loss_scale = bool(auto_scale_loss) and self.dtype_policy.name == "mixed_float16"
        variables = self.objective_variables()
        for name in self.OBJECTIVES:
            instance = self.make_optimizer(name, optimizer, overrides.get(name, learning_rate),
                                           beta_1, beta_2, loss_scale)
            instance.build(variables[name])
            self.objective_optimizers[name] = instance
        self._compile_kwargs = dict(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2,
                                    learning_rates=overrides, optimizer=optimizer,
                                    jit_compile=jit_compile, auto_scale_loss=auto_scale_loss)
        super().compile(jit_compile=jit_compile, auto_scale_loss=False, **kwargs)

    def get_compile_config(self):
        return dict(self._compile_kwargs)

    def compile_from_config(self, config):
        self.compile(**config)

    @property
    def optimizer_list(self) -> List[keras.optimizers.Optimizer]:
        return [self.objective_optimizers[name] for name in self.OBJECTIVES]

    def objective_variables(self) -> Dict[str, list]:
        raise TypeError(f"{type(self).__name__} must define objective_variables()")

    # ------------------------------------------------------------------------------ updates
    @staticmethod
    def num_replicas():
        return tf.distribute.get_strategy().num_replicas_in_sync

    #: Take every shared backward pass once (:meth:`apply_terms`, the models'
    #: ``train_step``). False takes each objective's gradient separately from the persistent
    #: tape (:meth:`apply_objective`): the same updates with shared backward passes repeated
    #: (4–48% more executed FLOPs, docs/speed.md), kept as the reference that
    #: tests/test_backward_once.py compares against.
    backward_once = True

    def loss_scale(self, names):
        """The loss scale of one backward pass for the objectives ``names``: the smallest
        current scale of their ``LossScaleOptimizer``s (None without loss scaling). The pass is
        seeded with it (``output_gradients``: the loss times the scale, without recording an op
        after the tape's block) and each objective's gradients are then rescaled to its own
        optimizer's scale, which ``apply_gradients`` divides out, skipping the step and halving
        the scale if they are not finite."""
        scales = [self.objective_optimizers[name].dynamic_scale for name in names
                  if isinstance(self.objective_optimizers[name],
                                keras.optimizers.LossScaleOptimizer)]
        if not scales:
            return None
        return tf.reduce_min(tf.stack([tf.convert_to_tensor(s) for s in scales]))

    @staticmethod
    def real_and_fake_passes(network, real, fake, training, one_pass=False):
        """``network``'s outputs on the real inputs and on the fake ones, concatenated along
        the batch (real rows first). ``network`` must treat each example alone (no batch norm:
        the discriminators and classifiers), so two passes give the values of one pass over
        both, and a loss that reads the fakes' outputs alone (the generator's) goes back
        through the fakes' pass alone: the network's input gradients skip the real rows
        (a third of D's for Lr-LiVAE, half for cGAN). ``real`` and ``fake`` are the
        network's inputs (a tensor or a list of tensors); ``one_pass`` (spectral norm, whose
        every training call runs a power iteration and rescales the kernel) concatenates them
        into one pass instead."""
        def concat(*parts):
            return tf.concat(parts, 0)

        real, fake = tf.nest.map_structure(tf.convert_to_tensor, (real, fake))
        if one_pass:
            return network(tf.nest.map_structure(concat, real, fake), training=training)
        return tf.nest.map_structure(concat, network(real, training=training),
                                     network(fake, training=training))

    def backward_once_gradients(self, tape, names, loss=None, links=()):
        """{objective: [(gradient, variable)]} of the objectives ``names`` from one backward pass.

        ``loss`` (a scalar or None) must be built so that its gradient w.r.t. each objective's
        own variables is that objective's gradient, e.g. the sum of each distinct loss term
        once, with graph cuts (:meth:`Terms.cut`) wherever the objectives weigh a term differently.
        ``links`` carry the terms across the cuts: ``(term, [(cut, source, weight), ...])``
        adds weight · ∂term/∂cut as the cotangent of ``source`` (the tensor the cut copied),
        one backward pass through the network behind the cut per distinct term. The
        objectives' variable lists must be disjoint (each variable has one optimizer)."""
        variables, owner = [], []
        per_objective = self.objective_variables()
        for name in names:
            variables += per_objective[name]
            owner += [name] * len(per_objective[name])
        if len({id(v) for v in variables}) != len(variables):
            raise ValueError(f"objectives {list(names)} share variables: one backward pass "
                             f"cannot give each its own gradient")
        seed = self.loss_scale(names)
        cotangents = {}
        for term, ends in links:
            grads = tape.gradient(term, [cut for cut, _, _ in ends],
                                  output_gradients=seed)
            for (_, source, weight), grad in zip(ends, grads):
                if grad is None:
                    continue
                key = source.ref()
                cotangents[key] = cotangents.get(key, 0.0) + weight * grad
        targets = [key.deref() for key in cotangents]
        output_gradients = list(cotangents.values())
        if loss is not None and not isinstance(loss, float):
            targets.append(loss)
            output_gradients.append(tf.ones_like(loss) if seed is None else seed)
        if not targets:
            return {name: [] for name in names}
        grads = tape.gradient(targets, variables, output_gradients=output_gradients)
        # Scale the gradients, not the loss: ops after the tape's block are not recorded.
        replica_scale = 1.0 / self.num_replicas()
        scales = {name: replica_scale for name in names}
        if seed is not None:
            for name in names:
                optimizer = self.objective_optimizers[name]
                if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
                    scales[name] = replica_scale * (tf.convert_to_tensor(optimizer.dynamic_scale)
                                                    / seed)
                else:
                    scales[name] = replica_scale / seed
        pairs = {name: [] for name in names}
        for name, grad, variable in zip(owner, grads, variables):
            if grad is not None:
                pairs[name].append((grad * scales[name], variable))
        return pairs

    def apply_backward_once(self, tape, names, loss=None, links=()):
        """Apply :meth:`backward_once_gradients`, each objective with its own optimizer (in
        ``OBJECTIVES`` order, as :meth:`apply_updates`); an objective without a gradient does
        not step."""
        pairs = self.backward_once_gradients(tape, names, loss, links)
        for name in self.OBJECTIVES:
            if pairs.get(name):
                self.objective_optimizers[name].apply_gradients(pairs[name])

    def apply_objective(self, tape, name, loss):
        """Differentiate ``loss`` w.r.t. objective ``name``'s variables only and apply it with
        that objective's optimizer, scaled for the number of replicas (module docstring)."""
        variables = self.objective_variables()[name]
        # Scale the gradients, not the loss: ops after the tape's block are not recorded.
        scale = 1.0 / self.num_replicas()
        seed = self.loss_scale([name])  # loss scaling: the backward pass seeded with the scale
        grads = tape.gradient(loss, variables, output_gradients=seed)
        pairs = [(g * scale, v) for g, v in zip(grads, variables) if g is not None]
        if pairs:
            self.objective_optimizers[name].apply_gradients(pairs)

    # ------------------------------------------------------------------------------ logging
    def init_trackers(self, keys: Sequence[str]):
        """Create one running mean per log key, outside any traced step (variables must not be
        created inside ``tf.function`` or in a replica context)."""
        keys = list(keys) + [key for extension in self.extensions.values()
                             for key in extension.LOG_KEYS if key not in keys]
        for key in keys:
            self._trackers[key] = keras.metrics.Mean(name=key)

    def track(self, values: Dict[str, tf.Tensor]):
        """Update the running means of ``values`` and return every tracker's result."""
        for key, value in values.items():
            self._trackers[key].update_state(value)
        return {key: self._trackers[key].result() for key in values}

    @property
    def metrics(self):
        return list(self._trackers.values())

    def apply_terms(self, tape, terms: Terms):
        """Every objective's update from the step's declared ``terms``, each optimizer on its
        own variables only (Algorithm 1 lines 25–29).

        With :attr:`backward_once` (default): one backward pass for every objective. The
        direct loss is Σ (direct weight · term); each term that reaches an objective through
        cuts (``via``) is differentiated once with respect to its cuts and each cut's gradient
        goes to the cut's source at that objective's weight (:meth:`backward_once_gradients`).
        Without it: each objective's weighted sum (:meth:`Terms.objectives`) is differentiated
        on its own (:meth:`apply_objective`), the reference the first is tested against."""
        names = terms.objective_names(self.OBJECTIVES)
        if not self.backward_once:
            with tape:  # the persistent tape again: the weighted sums must be recorded
                objectives = terms.objectives()
            for name in names:
                self.apply_objective(tape, name, objectives[name])
            return
        direct, links = [], []
        with tape:
            for term in terms.items:
                weight = term.direct_weight()
                if weight is not None:
                    direct.append(term.value if weight == 1.0 else weight * term.value)
                ends = [(cut, terms.source(cut), term.weights[objective])
                        for objective in term.weights if objective in term.via
                        for cut in term.via[objective]]
                if ends:
                    links.append((term.value, ends))
            loss = tf.add_n(direct) if direct else None
        self.apply_backward_once(tape, names, loss, links)

    def _normal(self, shape, seed):
        """N(0, I) noise from the model's seeded ``sample_seed_generator``, or from ``seed``
        (rows of the global batch if called inside a multi-replica step:
        :func:`keras_lsvae.layers.batch_normal`)."""
        seed = self.check_seed(seed, optional=True)
        return batch_normal(shape, self.sample_seed_generator if seed is None else seed)

    # ------------------------------------------------------------------------------ helpers
    @classmethod
    def batched(cls, fn, *arrays, batch_size=256):
        """Apply ``fn`` to slices of ``arrays`` and concatenate (dict or tensor outputs)."""
        batch_size = cls.check_positive("batch_size", batch_size)
        n = int(np.shape(arrays[0])[0])
        outputs = [fn(*(a[i:i + batch_size] for a in arrays)) for i in range(0, n, batch_size)]
        if isinstance(outputs[0], dict):
            return {k: tf.concat([o[k] for o in outputs], axis=0) for k in outputs[0]}
        return tf.concat(outputs, axis=0)

    def after_training(self, train_examples):
        """Run once after the last training step, before ``model.keras`` is written (resumed
        runs too). ``train_examples()`` returns up to ``STATISTICS_EXAMPLES`` training
        ``(images, labels)`` in the model's label format (class ids or attribute rows); call it
        only when needed, it loads data. Runs every extension's ``after_training`` (Lr-LiVAE's
        prior refit); models override it to add their own (paper B's attribute statistics)."""
        for extension in self.extensions.values():
            extension.after_training(self, train_examples)

    # --------------------------------------------------------------------------- extensions
    def extension(self, name):
        """The extension ``name`` if it is switched on, else None."""
        return self.extensions.get(name)

    def extension_terms(self, site, terms, **values):
        """Let the extensions of ``site`` add their terms to ``terms`` (``values``: what the
        site hands them, see keras_lsvae/models/extensions.py)."""
        for extension in self.extensions.values():
            if extension.site == site:
                extension.add_terms(self, terms, values)

    def extension_learning_rates(self, learning_rate, rates):
        """``rates`` with every extension's learning-rate changes, then ``rates`` given
        explicitly on top."""
        adjusted = {}
        for extension in self.extensions.values():
            extension.learning_rates(self, learning_rate, adjusted)
        adjusted.update(rates or {})
        return adjusted

    def after_step(self, adversary_codes, labels):
        """After the step's updates: the extensions' (extra adversary steps)."""
        for extension in self.extensions.values():
            extension.after_step(self, adversary_codes, labels)

    def get_config(self):
        return {"input_shape": list(self.example_shape), "num_classes": self.num_classes,
                "seed": self.seed, "name": self.name,
                "extensions": extensions_lib.config(self.extensions)}

    @classmethod
    def from_config(cls, config):
        """Also reads configs saved before the extensions existed
        (:func:`keras_lsvae.models.extensions.from_legacy`)."""
        config, legacy = extensions_lib.from_legacy(dict(config), warn=False)
        if legacy:
            config["extensions"] = {**legacy, **(config.get("extensions") or {})}
        return cls(**config)


class AttributeModel(LabelSplitModel):
    """Base of paper B's models (VAE, CondVAE, CondVAE-info, CSVAE): labels are {0, 1}
    attribute vectors (B, A) (``label_kind = "attributes"``, ``num_classes`` = A =
    ``num_attributes``), and one ``train_step`` serves every model: one persistent tape
    over :meth:`compute_losses`, then each objective's optimizer steps on its own loss and
    variables only (:meth:`apply_terms`), then :meth:`after_step` (the extensions' extra
    adversary steps).

    Subclasses set ``OBJECTIVES``, ``LOG_KEYS``, ``needs_attributes`` (whether reconstruction
    needs the labels) and implement ``objective_variables``, ``compute_losses(images,
    attributes, training, tape=None) -> Terms`` and ``_reconstruct(images, attributes,
    training)``.

    ``test_step`` runs inference mode with posterior means and draws nothing from the model's
    seed generators (the MMD term draws from a fixed seed): it changes no variable.
    """

    label_kind = "attributes"
    needs_attributes = True
    LOG_KEYS: Sequence[str] = ()

    @property
    def num_attributes(self):
        return self.num_classes

    def compile(self, learning_rate=5e-4, beta_1=0.9, beta_2=0.999, **kwargs):
        """Adam at 5e-4 with β = (0.9, 0.999), as the reference CSVAE implementation trained
        (alexlyzhov/latent-subspaces, csvae_toy/train.py: ``Adam(lr=1e-3/2)``, PyTorch's
        default betas); paper B gives no optimizer settings. See
        :meth:`LabelSplitModel.compile` for the other arguments."""
        super().compile(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, **kwargs)

    # ----------------------------------------------------------------------------- validation
    def check_attributes(self, attributes, name="attributes"):
        """Validate eagerly: (N, A) with A = num_attributes, values in {0, 1}, no NaN."""
        array = np.asarray(attributes)
        expected = f"expected (N, A) with A = {self.num_attributes} binary attributes"
        if array.ndim != 2 or array.shape[-1] != self.num_attributes:
            hint = ("; class ids? this model takes attribute vectors (one-hot for class data, "
                    "keras_lsvae.data converts them)" if array.ndim == 1 else "")
            raise ValueError(f"{name}: {expected}, got shape {array.shape}{hint}")
        if array.shape[0] == 0:
            raise ValueError(f"{name}: empty; {expected}")
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
            raise ValueError(f"{name}: {expected}, got dtype {array.dtype}")
        array = array.astype(np.float32)
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{name}: contains NaN or infinite values")
        if not np.all((array == 0) | (array == 1)):
            raise ValueError(f"{name}: values must be 0 or 1, got values such as "
                             f"{array[(array != 0) & (array != 1)][:3].tolist()}")
        return tf.convert_to_tensor(array)

    def check_batch(self, images, labels=None):
        """In-graph checks (see :meth:`LabelSplitModel.check_batch`) for attribute labels:
        rank 2 with last dimension A (static: a ValueError when traced), values in {0, 1}
        (``tf.debugging``: NaN fails it too). Returns (images, float32 attributes)."""
        images, _ = super().check_batch(images)
        if labels is None:
            return images, None
        labels = tf.convert_to_tensor(labels)
        if labels.shape.rank is not None and (labels.shape.rank != 2 or (
                labels.shape[-1] is not None and labels.shape[-1] != self.num_attributes)):
            raise ValueError(
                f"attributes: expected (B, A) with A = {self.num_attributes}, got shape "
                f"{tuple(labels.shape)}" + ("; class ids? pass one-hot attribute vectors"
                                            if labels.shape.rank == 1 else ""))
        if not (labels.dtype.is_floating or labels.dtype.is_integer or labels.dtype.is_bool):
            raise ValueError(f"attributes: expected {{0, 1}} values, got {labels.dtype.name}")
        labels = tf.cast(labels, tf.float32)
        check = tf.debugging.assert_equal(
            tf.reduce_all(tf.logical_or(tf.equal(labels, 0.0), tf.equal(labels, 1.0))), True,
            message="attributes: values must be 0 or 1 (found another value or NaN)")
        with tf.control_dependencies([check]):
            return tf.identity(images), tf.identity(labels)

    # ------------------------------------------------------------------------ train / test
    def _unpack(self, data):
        """(images, attributes[, sample_weight]) -> checked (images, float32 attributes)."""
        if isinstance(data, dict):
            data = (data["images"], data.get("attributes"))
        if not isinstance(data, (tuple, list)) or len(data) < 2 or data[1] is None:
            raise ValueError(f"{type(self).__name__}: expected (images, attributes) batches")
        return self.check_batch(data[0], data[1])

    def train_step(self, data):
        images, attributes = self._unpack(data)
        with tf.GradientTape(persistent=True) as tape:
            terms = self.compute_losses(images, attributes, training=True,
                                        tape=tape if self.backward_once else None)
        self.apply_terms(tape, terms)
        del tape
        self.after_step(terms.adversary_codes, attributes)
        return self.track(terms.logs)

    def test_step(self, data):
        images, attributes = self._unpack(data)
        return self.track(self.compute_losses(images, attributes, training=False).logs)

    def _split_inputs(self, inputs):
        if isinstance(inputs, dict):
            return inputs["images"], inputs.get("attributes")
        if isinstance(inputs, (tuple, list)):
            return inputs[0], (inputs[1] if len(inputs) > 1 else None)
        return inputs, None

    def call(self, inputs, training=False):
        """Reconstruction in inference mode (posterior means). ``inputs``: images, or
        (images, attributes[, ...]) / {"images", "attributes"} (the batch format of
        ``train_step``); models that need the attributes raise without them."""
        images, attributes = self._split_inputs(inputs)
        if attributes is None and self.needs_attributes:
            raise ValueError(f"{type(self).__name__} needs attributes to reconstruct: call it "
                             f"on (images, attributes)")
        if attributes is not None:
            attributes = tf.cast(attributes, tf.float32)
        return self._reconstruct(images, attributes, training)

    def predict_step(self, data):
        """``predict((images, attributes))`` passes the attributes on (Keras' default would
        treat them as targets and drop them)."""
        if isinstance(data, (tuple, list)) and len(data) == 1:  # Keras wraps x as (x,)
            data = data[0]
        return self(data, training=False)

    # ------------------------------------------------------------------------------ helpers

    _target_unit = "row"

    def _check_targets(self, targets, name):
        return self.check_attributes(targets, name)

    def _check_pair(self, images, attributes, name="attributes"):
        return super()._check_pair(images, attributes, name)
