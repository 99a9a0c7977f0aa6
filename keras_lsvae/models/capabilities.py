"""What a model supports, declared by its type: small mixin classes a model class inherits.

Evaluation, figures, the training loop, export and the benchmarks ask
``isinstance(model, capabilities.Swaps)`` (or :func:`supports`) instead of probing for methods or
reading signatures: a model's abilities are part of its class statement, the tests assert the
exact set of every registered model (tests/test_capabilities.py), and a new model gets every
protocol and figure that applies to it by declaring what it has.

Each capability documents the call it guarantees. Where the models' public methods differ in
signature (``reconstruct(images)`` on Lr-LiVAE, ``reconstruct(images, labels=None)`` on the
cVAE, ``reconstruct(images, attributes)`` on CSVAE; CSVAE's ``manipulate(images,
target_attributes, w=None)`` beside ``manipulate(images, attributes, target_attributes)``), the
capability adds ONE uniform method that callers use (``reconstruct_labeled``,
``manipulate_attributes``, ...); its default implementation calls the public method in the form
most models share, and the others override it in their inference API. The public methods keep
their own signatures.

Labels in every uniform call are in the model's ``label_kind``: class ids (N,) for "class"
models, {0, 1} attribute rows (N, A) for "attributes" models.

What runs once after training is not a capability: every model has
``after_training(train_examples)`` (:class:`keras_lsvae.models.base.LabelSplitModel`).
"""

from __future__ import annotations

from typing import Dict, FrozenSet, Optional, Tuple


class Capability:
    """Base of the capability mixins (no state, no ``__init__``)."""


class Generates(Capability):
    """``generate(labels, seed=None)``: one sample per requested label (class id or attribute
    row) from the model's prior; a fixed ``seed`` gives the same samples."""


class Encodes(Capability):
    """``encode_labeled(images, labels, mode="mode") -> dict of named codes``: the posterior
    codes of ``images`` (means in mode "mode", posterior samples in mode "sample"), given their
    true ``labels``; models whose encoder does not read labels ignore them.

    :attr:`label_irrelevant_code` names the code that should carry no label information (what
    leakage probes read); :attr:`label_relevant_code` the code that should carry it, or None.
    """

    label_irrelevant_code: str = "z"
    label_relevant_code: Optional[str] = None

    def encode_labeled(self, images, labels, mode="mode"):
        """Default: ``encode(images, labels, mode=mode)``."""
        return self.encode(images, labels, mode=mode)


class Reconstructs(Capability):
    """``reconstruct_labeled(images, labels)``: decode the posterior mean of ``images`` given
    their true ``labels`` (ignored by models that do not condition on them)."""

    def reconstruct_labeled(self, images, labels):
        """Default: ``reconstruct(images, labels)``."""
        return self.reconstruct(images, labels)


class PredictsLabels(Capability):
    """``predict_labels(images) -> (N, K)`` class probabilities from the model itself."""


class PredictsAttributes(Capability):
    """``predict_attributes(images) -> (N, A)`` attribute probabilities from the model itself
    (``metrics.json`` then reports ``test_attribute_accuracy``)."""


class Swaps(Capability):
    """``swap(images_s, images_u)``: decode the label-relevant code of ``images_s`` with the
    label-irrelevant code of ``images_u``, pairwise (Lr-LiVAE Fig. 6)."""


class Inpaints(Capability):
    """``inpaint_labeled(images, mask, labels=None, fill_value=0.0, method="encode")``:
    x_inp = M ⊙ x' + (1 − M) ⊙ x with M = 1 on missing pixels, the missing pixels first set to
    ``fill_value`` (Lr-LiVAE §4.5, Fig. 7). ``method`` is one of :attr:`INPAINT_METHODS`
    ("encode": one encoder pass, the paper's). ``labels`` are the true labels; only models with
    :attr:`inpaint_uses_labels` read them (the others need none or predict them).
    """

    INPAINT_METHODS: Tuple[str, ...] = ("encode",)
    inpaint_uses_labels = False

    def inpaint_labeled(self, images, mask, labels=None, fill_value=0.0, method="encode"):
        """Default: ``inpaint(images, mask, fill_value=fill_value, method=method)``."""
        return self.inpaint(images, mask, fill_value=fill_value, method=method)


class Interpolates(Capability):
    """``interpolate(images_a, images_b, num_steps=8) -> (N, num_steps, ...)`` between the codes
    of two image sets, and paper A §4.3's ``interpolate_zs(label, num_steps, seed)`` /
    ``interpolate_zu(label, num_steps, seed)`` (Fig. 4a / 4b)."""


class Traverses(Capability):
    """``traverse(label, dims, values, seed) -> (len(dims), len(values), ...)``: one
    label-irrelevant dimension at a time set to each value (Fig. 5), with
    ``sample_latents(labels, seed) -> (z_s, z_u)`` and ``decode(z_s, z_u)`` to rank them."""


class ManipulatesAttributes(Capability):
    """``manipulate_attributes(images, attributes, target_attributes)``: paper B §4.3's G_ij,
    ``images`` (with their ``attributes``) changed to ``target_attributes`` with the model's
    default point p."""

    def manipulate_attributes(self, images, attributes, target_attributes):
        """Default: ``manipulate(images, attributes, target_attributes)``."""
        return self.manipulate(images, attributes, target_attributes)


class ScalesManipulation(Capability):
    """``manipulate(images, attributes, target_attributes, scale=p)``: G_ij with the label
    p · target (CondVAE, CondVAE-info; paper B Fig. 3b, 3c)."""


class FitsAttributeStatistics(Capability):
    """``fit_attribute_statistics(images, attributes)``: per-attribute latent means that
    ``manipulate`` uses (refit each epoch for the manipulation grids, and after training)."""


class WGrids(Capability):
    """CSVAE's subspaces W_i (paper B Fig. 3/4): ``w_dim``, ``w_grid(attribute, num)``,
    ``w_principal_directions(images, attributes, attribute, num)`` and
    ``manipulate_grid(images, attribute, points) -> (N, P, ...)``; ``encode_labeled`` returns
    ``w_mean``."""


class ExportsSignatures(Capability):
    """``export_spec() -> keras_lsvae.export.signatures.ExportSpec``: the model's own SavedModel
    signatures, preferred over the builder registered for its class."""


#: every capability, in documentation order
CAPABILITIES: Tuple[type, ...] = (
    Generates, Encodes, Reconstructs, PredictsLabels, PredictsAttributes, Swaps, Inpaints,
    Interpolates, Traverses, ManipulatesAttributes, ScalesManipulation,
    FitsAttributeStatistics, WGrids, ExportsSignatures)
BY_NAME: Dict[str, type] = {cls.__name__: cls for cls in CAPABILITIES}


def supports(model, *capabilities: type) -> bool:
    """True if ``model`` (an instance or a class) declares every one of ``capabilities``."""
    cls = model if isinstance(model, type) else type(model)
    return all(issubclass(cls, capability) for capability in capabilities)


def declared(model) -> FrozenSet[str]:
    """Names of the capabilities ``model`` (an instance or a class) declares."""
    return frozenset(cls.__name__ for cls in CAPABILITIES if supports(model, cls))


__all__ = ["BY_NAME", "CAPABILITIES", "Capability", "declared", "supports",
           *(cls.__name__ for cls in CAPABILITIES)]
