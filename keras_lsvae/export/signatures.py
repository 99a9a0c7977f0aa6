"""What a model exports: named signatures (SavedModel / TF Serving) and TFLite graphs, declared
per model class.

A model class declares its exports with :func:`register` (here, in ``keras_lsvae/export/``,
keyed by the class) or by declaring the capability
:class:`keras_lsvae.models.capabilities.ExportsSignatures` and defining
``export_spec(self) -> ExportSpec`` on the class itself, which takes precedence. Exporters never
look at a model's name: a new model (e.g. CSVAE with ``manipulate``) declares its own
:class:`Signature` list and nothing else changes.

Every signature input has a documented shape with a dynamic batch dimension ``N``. The graph's
input spec leaves every dimension but the rank open; the signature checks the documented sizes
in the graph (:func:`check_shape`), so a request with the wrong image size or code length fails
as ``INVALID_ARGUMENT`` with a message that names the input and the expected shape, the way TF
Serving reports any failed in-graph assertion.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from keras_lsvae.models import capabilities as caps

#: A documented dimension: an int (fixed), "N" (the batch), or a short text such as "0|1|N".
Dim = Any


@dataclasses.dataclass(frozen=True)
class Arg:
    """One input or output tensor of a signature.

    ``shape`` is the documented shape (ints are checked in the graph for inputs; strings such as
    ``"N"`` or ``"0|N"`` are sizes the signature's own code checks). ``default`` (inputs only)
    is the value TF Serving feeds when a request omits the input (SignatureDef ``defaults``).
    """

    name: str
    dtype: str
    shape: Tuple[Dim, ...]
    doc: str = ""
    default: Optional[Any] = None

    @property
    def optional(self) -> bool:
        return self.default is not None

    def tensor_spec(self, static=False) -> tf.TensorSpec:
        """Every dimension open (SavedModel signatures: checked in the graph), or with the
        integer dimensions fixed (``static``: TFLite graphs, which cannot check)."""
        shape = [d if static and isinstance(d, int) else None for d in self.shape]
        return tf.TensorSpec(shape, tf.as_dtype(self.dtype), name=self.name)

    def default_tensor(self):
        return tf.constant(np.asarray(self.default, dtype=self.dtype))

    def shape_text(self) -> str:
        dims = [str(d) for d in self.shape]
        return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


@dataclasses.dataclass(frozen=True)
class Signature:
    """A named inference function: ``fn(**inputs) -> {output name: tensor}``, traced in
    inference mode. ``inputs`` order is the positional order of the traced function."""

    name: str
    inputs: Tuple[Arg, ...]
    outputs: Tuple[Arg, ...]
    fn: Callable[..., Dict[str, tf.Tensor]]
    doc: str = ""

    def function(self) -> Callable:
        """``fn`` as a Python function whose parameters carry the inputs' names and, for
        optional inputs, tensor defaults: ``tf.saved_model.save`` turns those defaults into the
        SignatureDef's ``defaults`` map, which TF Serving feeds for omitted inputs."""
        empty = inspect.Parameter.empty
        parameters = [inspect.Parameter(a.name, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                        default=a.default_tensor() if a.optional else empty)
                      for a in self.inputs]
        python_signature = inspect.Signature(parameters)
        fn = self.fn

        def call(*args, **kwargs):
            bound = python_signature.bind(*args, **kwargs)
            bound.apply_defaults()
            return fn(**bound.arguments)

        call.__signature__ = python_signature
        call.__name__ = self.name
        return call

    def input_signature(self, static=False) -> List[tf.TensorSpec]:
        return [a.tensor_spec(static) for a in self.inputs]


@dataclasses.dataclass(frozen=True)
class TFLiteGraph:
    """A graph converted to TFLite (no in-graph checks: TFLite has no assertion ops).

    ``signature`` has static non-batch dimensions; ``reference(**inputs)`` computes the same
    output through the Keras model's public API (the parity check); ``sample(n, rng)`` gives
    fixed, valid inputs for it.
    """

    file_stem: str
    signature: Signature
    reference: Callable[..., np.ndarray]
    sample: Callable[[int, np.random.Generator], Dict[str, np.ndarray]]
    output: str = "images"


@dataclasses.dataclass(frozen=True)
class ExportSpec:
    """Everything one model exports. The first signature is also ``serving_default``."""

    signatures: Tuple[Signature, ...]
    tflite: Tuple[TFLiteGraph, ...] = ()


_BUILDERS: Dict[type, Callable[[Any], ExportSpec]] = {}


def register(model_class: type):
    """Decorator: ``builder(model) -> ExportSpec`` declares what ``model_class`` exports."""

    def decorator(builder):
        if model_class in _BUILDERS and _BUILDERS[model_class] is not builder:
            raise ValueError(f"export signatures of {model_class.__name__} registered twice")
        _BUILDERS[model_class] = builder
        return builder

    return decorator


def exportable_types() -> List[str]:
    return sorted(cls.__name__ for cls in _BUILDERS)


def spec_for(model) -> ExportSpec:
    """The model's own ``export_spec()`` if its class declares ``ExportsSignatures``, else the
    registered builder of its class (or nearest registered base class)."""
    if caps.supports(model, caps.ExportsSignatures):
        return model.export_spec()
    for cls in type(model).__mro__:
        if cls in _BUILDERS:
            return _BUILDERS[cls](model)
    raise TypeError(f"model type {type(model).__name__} declares no export signatures; "
                    f"exportable types: {', '.join(exportable_types()) or 'none'}")


# ------------------------------------------------------------------------- in-graph checks
def check_shape(tensor, arg: Arg):
    """``tensor`` with its documented integer dimensions asserted in the graph (and set
    statically for the layers that follow)."""
    fixed = [(i, d) for i, d in enumerate(arg.shape) if isinstance(d, int)]
    if not fixed:
        return tensor
    axes, sizes = zip(*fixed)
    actual = tf.gather(tf.shape(tensor, out_type=tf.int64), list(axes))
    check = tf.debugging.assert_equal(
        actual, tf.constant(sizes, tf.int64),
        message=f"{arg.name}: expected shape {arg.shape_text()}; sizes of dimensions {list(axes)}"
                f" differ")
    with tf.control_dependencies([check]):
        tensor = tf.identity(tensor)
    return tf.ensure_shape(tensor, [d if isinstance(d, int) else None for d in arg.shape])


def check_inputs(inputs: Dict[str, tf.Tensor], args: Sequence[Arg]) -> Dict[str, tf.Tensor]:
    return {a.name: check_shape(inputs[a.name], a) for a in args}


def assert_all(checks, tensor):
    """``tensor`` after every assertion op in ``checks`` has run."""
    with tf.control_dependencies(list(checks)):
        return tf.identity(tensor)


def check_labels(labels, num_classes, name="labels"):
    """Class ids in [0, num_classes), asserted in the graph."""
    message = f"{name}: class ids must lie in [0, {num_classes})"
    return assert_all([tf.debugging.assert_greater_equal(labels, 0, message=message),
                       tf.debugging.assert_less(labels, num_classes, message=message)], labels)


def check_finite(tensor, name):
    """A real-valued input (codes, noise, fill values) with every value asserted finite in the
    graph: NaN or ±inf fails as INVALID_ARGUMENT naming the input, as the models' Python API
    raises a ValueError (``LabelSplitModel.check_finite``)."""
    return tf.debugging.assert_all_finite(tensor, f"{name}: contains NaN or infinite values")


def check_range(tensor, name, low, high):
    """``tensor`` with its values asserted in [low, high] in the graph."""
    message = f"{name}: values must lie in [{low}, {high}]"
    return assert_all([
        tf.debugging.assert_greater_equal(tensor, tf.constant(low, tensor.dtype), message=message),
        tf.debugging.assert_less_equal(tensor, tf.constant(high, tensor.dtype), message=message)],
        tensor)


def check_same_batch(name_a, a, name_b, b):
    return tf.debugging.assert_equal(
        tf.shape(a)[0], tf.shape(b)[0],
        message=f"{name_a} and {name_b} must have the same number of rows N")


# ---------------------------------------------------------------------------- documentation
def describe(spec: ExportSpec) -> str:
    """A Markdown table of every signature's inputs and outputs (name, dtype, shape)."""
    rows = ["| signature | input / output | name | dtype | shape | meaning |",
            "|---|---|---|---|---|---|"]
    for i, sig in enumerate(spec.signatures):
        title = f"`{sig.name}`" + (" (= `serving_default`)" if i == 0 else "")
        for kind, args in (("input", sig.inputs), ("output", sig.outputs)):
            for arg in args:
                doc = arg.doc + (" Optional." if arg.optional else "")
                cells = [title, kind, f"`{arg.name}`", arg.dtype, arg.shape_text(), doc.strip()]
                rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
                title = ""
    return "\n".join(rows)
