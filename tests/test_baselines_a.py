"""Paper A's baselines (cVAE, cVAE-GAN, cGAN): closed-form losses on tiny fixed batches, the
projection discriminator by hand, the feature-matching terms, which networks each objective
reaches, the inference API and bad input. (Save/load, config round trips and "each optimizer
moves only its own variables" run for every registered model in tests/test_models_common.py.)
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lsvae import models
from keras_lsvae.models import cvaegan as cvaegan_lib
from tests.helpers import image_batch

SHAPE, K = (8, 8, 1), 3


def tiny(name, **overrides):
    kwargs = dict(input_shape=SHAPE, num_classes=K, z_dim=3, width=8, seed=0)
    if name != "cgan":
        kwargs["condition_units"] = 8
    kwargs.update(overrides)
    keras.utils.set_random_seed(0)
    model = models.get(name, **kwargs)
    model.compile()
    return model


@pytest.fixture(scope="module")
def batch():
    images, labels = image_batch(6, shape=SHAPE, num_classes=K, seed=1)
    labels[:3] = [0, 1, 2]
    return images, labels


def _softplus(x):
    return np.logaddexp(0.0, x)


# ------------------------------------------------------------------------------------- cVAE
def test_cvae_loss_is_the_closed_form_negative_elbo(batch):
    images, labels = batch
    model = tiny("cvae", rec_weight=0.3, kl_weight=0.7)
    one_hot = np.eye(K, dtype="float32")[labels]
    posterior = model.encoder([images, one_hot], training=False)
    mean, log_var = posterior["mean"].numpy(), posterior["log_var"].numpy()
    kl = np.mean(0.5 * np.sum(np.exp(log_var) + mean**2 - 1.0 - log_var, axis=-1))
    decoded = model.decoder([mean, one_hot], training=False).numpy()
    rec = np.mean(0.5 * np.sum((images - decoded) ** 2, axis=(1, 2, 3)))
    logs = model.compute_losses(tf.constant(images), tf.constant(labels), training=False).logs
    np.testing.assert_allclose(logs["kl"], kl, rtol=1e-5)
    np.testing.assert_allclose(logs["rec"], rec, rtol=1e-5)
    np.testing.assert_allclose(logs["loss"], 0.3 * rec + 0.7 * kl, rtol=1e-5)


def test_cvae_default_weights_follow_lrlivae_code_weighting():
    model = tiny("cvae")
    assert model.rec_weight == pytest.approx(10.0 / np.prod(SHAPE))
    assert model.kl_weight == pytest.approx(1.0 / 3)


def test_cvae_needs_labels_for_its_encoder(batch):
    images, labels = batch
    model = tiny("cvae")
    for call in (lambda: model.encode(images), lambda: model.reconstruct(images),
                 lambda: model.inpaint(images, "right_half")):
        with pytest.raises(ValueError, match="needs the class labels"):
            call()
    assert model.encode(images, labels)["z"].shape == (6, 3)


# ------------------------------------------------------------------------------------- cGAN
def _trunk_features(discriminator, images):
    flatten = [layer for layer in discriminator.layers
               if isinstance(layer, keras.layers.Flatten)][-1]
    return keras.Model(discriminator.inputs[0], flatten.output)(images).numpy()


@pytest.mark.parametrize("spectral_norm", [False, True])
def test_projection_discriminator_equals_psi_plus_embedding_product(batch, spectral_norm):
    images, labels = batch
    model = tiny("cgan", spectral_norm=spectral_norm)
    if spectral_norm:
        # Keras' SpectralNormalization normalises its kernels in place during training steps;
        # inference uses the stored kernels as they are.
        model.fit(tf.data.Dataset.from_tensors(batch), verbose=0)
    discriminator = model.discriminator
    phi = _trunk_features(discriminator, images)
    dense = (keras.layers.Dense, keras.layers.SpectralNormalization)
    out = [layer for layer in discriminator.layers if isinstance(layer, dense)][-1]
    projection = [layer for layer in discriminator.layers if "projection" in layer.name][0]
    embedding = projection.embedding
    if spectral_norm:
        out, embedding = out.layer, embedding.layer
    out_kernel, out_bias = out.kernel.numpy(), out.bias.numpy()
    embedding = embedding.kernel.numpy()
    expected = phi @ out_kernel + out_bias + np.sum(embedding[labels] * phi, -1,
                                                     keepdims=True)
    np.testing.assert_allclose(model.discriminate(images, labels), expected, rtol=1e-4,
                               atol=1e-5)
    # Without labels, the projection term vanishes: ψ(φ(x)) alone.
    np.testing.assert_allclose(model.discriminate(images), phi @ out_kernel + out_bias,
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("gan_loss", ["nonsaturating", "hinge"])
def test_cgan_losses_from_the_logits(batch, gan_loss):
    images, labels = batch
    model = tiny("cgan", gan_loss=gan_loss, train_sampling="mode")
    result = model.compute_losses(tf.constant(images), tf.constant(labels), training=True)
    one_hot = tf.constant(np.eye(K, dtype="float32")[labels])
    fakes = model.generator([tf.zeros((6, 3)), one_hot], training=True)
    real = model.discriminator([tf.constant(images), one_hot], training=False).numpy()
    fake = model.discriminator([fakes, one_hot], training=False).numpy()
    if gan_loss == "hinge":
        d_loss = np.mean(np.maximum(0, 1 - real)) + np.mean(np.maximum(0, 1 + fake))
        g_loss = -np.mean(fake)
    else:
        d_loss = np.mean(_softplus(-real)) + np.mean(_softplus(fake))
        g_loss = np.mean(_softplus(-fake))
    np.testing.assert_allclose(result.logs["d_loss"], d_loss, rtol=1e-4)
    np.testing.assert_allclose(result.logs["g_loss"], g_loss, rtol=1e-4)


# --------------------------------------------------------------------- cVAE-GAN feature terms
def test_feature_matching_terms_vanish_when_real_equals_generated():
    rng = np.random.default_rng(0)
    features = tf.constant(rng.normal(size=(7, 5)).astype("float32"))
    labels = tf.constant([0, 1, 2, 0, 1, 2, 0])
    assert float(cvaegan_lib.mean_feature_matching(features, features)) == 0.0
    assert float(cvaegan_lib.classwise_mean_feature_matching(features, features, labels,
                                                             labels, 4)) == 0.0
    images = tf.random.uniform((2, 4, 4, 1), seed=1)
    total, pixels = cvaegan_lib.pairwise_feature_matching(images, images, features, features,
                                                          features, features)
    assert float(total) == float(pixels) == 0.0


def test_feature_matching_terms_known_values():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(6, 4)).astype("float32")
    fake = rng.normal(size=(6, 4)).astype("float32")
    real_labels = np.array([0, 0, 1, 1, 3, 3])
    fake_labels = np.array([0, 1, 1, 1, 2, 0])
    np.testing.assert_allclose(cvaegan_lib.mean_feature_matching(real, fake),
                               0.5 * np.sum((real.mean(0) - fake.mean(0)) ** 2), rtol=1e-5)
    expected = 0.0
    for c in range(4):  # a loop here, to check the vectorised version
        if (real_labels == c).any() and (fake_labels == c).any():
            expected += 0.5 * np.sum((real[real_labels == c].mean(0)
                                      - fake[fake_labels == c].mean(0)) ** 2)
    np.testing.assert_allclose(
        cvaegan_lib.classwise_mean_feature_matching(real, fake, real_labels, fake_labels, 4),
        expected, rtol=1e-5)
    images = rng.uniform(size=(6, 2, 2, 1)).astype("float32")
    recs = rng.uniform(size=(6, 2, 2, 1)).astype("float32")
    total, pixels = cvaegan_lib.pairwise_feature_matching(images, recs, real, fake, fake, real)
    pixel_term = np.mean(0.5 * np.sum((images - recs) ** 2, axis=(1, 2, 3)))
    feature_term = np.mean(0.5 * np.sum((real - fake) ** 2, -1))
    np.testing.assert_allclose(pixels, pixel_term, rtol=1e-5)
    np.testing.assert_allclose(total, pixel_term + 2 * feature_term, rtol=1e-5)


def test_cvaegan_objectives_are_bao_et_al_combinations(batch):
    images, labels = batch
    model = tiny("cvaegan", kl_weight=0.5, rec_weight=0.2, gd_weight=0.03, gc_weight=0.05,
                 train_sampling="mode")
    result = model.compute_losses(tf.constant(images), tf.constant(labels), training=True)
    logs, objectives = result.logs, result.objectives()
    np.testing.assert_allclose(objectives["encoder"], 0.5 * logs["kl"] + 0.2 * logs["rec"],
                               rtol=1e-5)
    np.testing.assert_allclose(objectives["generator"], 0.2 * logs["rec"] + 0.03 * logs["gd"]
                               + 0.05 * logs["gc"], rtol=1e-5)
    # C: cross-entropy on the real images; D: GAN loss over real, x_f and x_p (no batch norm
    # in D or C, so inference-mode outputs equal training-mode ones).
    c_logits = model.classifier(images)["logits"].numpy()
    log_probs = c_logits - np.log(np.sum(np.exp(c_logits), -1, keepdims=True))
    np.testing.assert_allclose(logs["c_loss"], -np.mean(log_probs[np.arange(6), labels]),
                               rtol=1e-5)
    one_hot = np.eye(K, dtype="float32")[labels]
    mean = model.encoder([images, one_hot], training=True)["mean"]
    generated = model.generator([tf.concat([mean, tf.zeros_like(mean)], 0),
                                 tf.concat([one_hot, one_hot], 0)], training=True).numpy()
    real = model.discriminator(images)["logits"].numpy()
    fakes = model.discriminator(generated)["logits"].numpy()
    d_loss = np.mean(_softplus(-real)) + np.mean(_softplus(fakes[:6])) + np.mean(
        _softplus(fakes[6:]))
    np.testing.assert_allclose(logs["d_loss"], d_loss, rtol=1e-4)
    assert objectives["discriminator"] is logs["d_loss"]


def test_cvaegan_bao_weighting_and_bad_options():
    model = tiny("cvaegan", loss_weighting="bao")
    assert (model.kl_weight, model.rec_weight, model.gd_weight, model.gc_weight) == (
        3.0, 1.0, 1e-3, 1e-3)
    for bad in (dict(loss_weighting="x"), dict(gan_loss="x"), dict(gd_weight=-1.0),
                dict(train_sampling="x")):
        with pytest.raises(ValueError):
            tiny("cvaegan", **bad)
    with pytest.raises(ValueError, match="gan_loss"):
        tiny("cgan", gan_loss="wasserstein")


def _gradient_reach(model, images, labels):
    """{objective: set of network names whose variables get a non-zero gradient} (a slice of
    a batched pass gives the other slices zero, not None, gradients), and each objective's
    gradients w.r.t. its own variables."""
    networks = {name: getattr(model, name) for name in
                ("encoder", "decoder", "generator", "discriminator", "classifier")
                if hasattr(model, name)}
    with tf.GradientTape(persistent=True) as tape:
        objectives = model.compute_losses(tf.constant(images), tf.constant(labels),
                                          training=True).objectives()
    reach = {}
    for objective, loss in objectives.items():
        reach[objective] = {name for name, net in networks.items()
                            if any(g is not None and np.any(g.numpy() != 0) for g in
                                   tape.gradient(loss, net.trainable_variables))}
    own = {objective: tape.gradient(loss, model.objective_variables()[objective])
           for objective, loss in objectives.items()}
    del tape
    return reach, own


def test_cvaegan_gradients_asymmetric_training(batch):
    images, labels = batch
    model = tiny("cvaegan")
    reach, own = _gradient_reach(model, images, labels)
    for objective, grads in own.items():  # every own variable gets a gradient
        assert all(g is not None and np.any(g.numpy() != 0) for g in grads), objective
    assert reach["classifier"] == {"classifier"}  # C: real data only
    assert reach["encoder"] >= {"encoder"} and "encoder" in reach["generator"]
    # G never sees D's logits (mean feature matching instead of -log D(G(z))): no gradient of
    # G's objective reaches D's output layer.
    head = model.discriminator.get_layer("discriminator_out").trainable_variables
    assert head
    with tf.GradientTape() as tape:
        objective = model.compute_losses(tf.constant(images), tf.constant(labels),
                                         training=True).objectives()["generator"]
    assert all(g is None or not np.any(g.numpy()) for g in tape.gradient(objective, head))


@pytest.mark.parametrize("name", ["cvae", "cgan"])
def test_gradients_reach_every_own_variable(batch, name):
    images, labels = batch
    model = tiny(name)
    reach, own = _gradient_reach(model, images, labels)
    for objective, grads in own.items():
        assert all(g is not None and np.any(g.numpy() != 0) for g in grads), objective
    if name == "cgan":
        assert reach["discriminator"] == {"discriminator", "generator"}  # fakes depend on G
        assert reach["generator"] == {"generator", "discriminator"}


# ------------------------------------------------------------------------- inference API
@pytest.mark.parametrize("name", ["cvae", "cvaegan", "cgan"])
def test_generation_shapes_determinism_and_label_dependence(batch, name):
    model = tiny(name)
    model.fit(tf.data.Dataset.from_tensors(batch), epochs=2, verbose=0)
    labels = np.array([0, 1, 2, 0])
    out = model.generate(labels, seed=3)
    assert out.shape == (4, *SHAPE) and out.dtype == tf.float32
    assert np.all((out.numpy() >= 0) & (out.numpy() <= 1))
    np.testing.assert_array_equal(out, model.generate(labels, seed=3))
    assert not np.array_equal(out, model.generate(labels, seed=4))
    zeros, ones = model.generate([0] * 4, seed=3), model.generate([1] * 4, seed=3)
    assert np.abs(zeros.numpy() - ones.numpy()).max() > 1e-4  # the label changes the output
    z = np.zeros((2, 3), "float32")
    assert not np.array_equal(model.decode(z, [0, 0]), model.decode(z, [2, 2]))


@pytest.mark.parametrize("name", ["cvae", "cvaegan"])
def test_encode_reconstruct_inpaint(batch, name):
    images, labels = batch
    model = tiny(name)
    codes = model.encode(images, labels)
    assert set(codes) >= {"z", "z_mean", "z_log_var"} and codes["z"].shape == (6, 3)
    np.testing.assert_array_equal(codes["z"], codes["z_mean"])  # mode "mode"
    assert not np.array_equal(model.encode(images, labels, mode="sample")["z"], codes["z"])
    recon = model.reconstruct(images, labels)
    assert recon.shape == images.shape
    np.testing.assert_array_equal(recon, model.reconstruct(images, labels))
    mask = np.zeros(SHAPE, "float32")
    mask[:, 4:] = 1.0
    filled = model.inpaint(images, mask, labels).numpy()
    assert filled.shape == images.shape
    np.testing.assert_array_equal(filled[:, :, :4], images[:, :, :4])  # visible pixels kept
    with pytest.raises(ValueError, match="mask"):
        model.inpaint(images, np.full(SHAPE, 0.5, "float32"), labels)
    with pytest.raises(ValueError, match="mask"):
        model.inpaint(images, np.zeros((4, 4, 1), "float32"), labels)


def test_cvaegan_predicts_labels_when_none_are_given(batch):
    images, labels = batch
    model = tiny("cvaegan")
    probabilities = model.predict_labels(images).numpy()
    assert probabilities.shape == (6, K)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-5)
    predicted = probabilities.argmax(-1)
    np.testing.assert_array_equal(model.encode(images)["z"], model.encode(images, predicted)["z"])
    np.testing.assert_array_equal(model.reconstruct(images),
                                  model.reconstruct(images, predicted))
    assert model.inpaint(images, "bottom_half").shape == images.shape


@pytest.mark.parametrize("name", ["cvae", "cvaegan", "cgan"])
def test_bad_input_raises_clear_errors(batch, name):
    images, labels = batch
    model = tiny(name)
    with pytest.raises(ValueError, match=r"class ids must lie in \[0, 3\)"):
        model.generate([0, 3])
    with pytest.raises(ValueError, match="1-D vector"):
        model.generate(np.eye(3))
    with pytest.raises(ValueError, match="z: expected shape"):
        model.decode(np.zeros((2, 5)), [0, 1])
    with pytest.raises(ValueError, match="same N"):
        model.decode(np.zeros((2, 3)), [0, 1, 2])
    ds = lambda x, y: tf.data.Dataset.from_tensors((x, y))  # noqa: E731
    with pytest.raises(ValueError, match="one-hot"):  # first trace: shapes are static
        model.fit(ds(images, np.eye(3, dtype="int32")[labels]), verbose=0)
    with pytest.raises(tf.errors.InvalidArgumentError, match="class ids must lie"):
        model.fit(ds(images, np.array([0, 1, 2, 3, 0, 1])), verbose=0)
    bad = images.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN"):
        model.fit(ds(bad, labels), verbose=0)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[0, 1\]"):
        model.fit(ds(images * 255.0, labels), verbose=0)
    with pytest.raises(ValueError, match=r"\(images, labels\)"):
        model.fit(tf.data.Dataset.from_tensors(images), verbose=0)
    if name != "cgan":
        with pytest.raises(ValueError, match="NaN"):
            model.encode(bad, labels)
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            model.reconstruct(images * 2.0, labels)
        with pytest.raises(ValueError, match="one class id per image"):
            model.encode(images, labels[:2])
        with pytest.raises(ValueError, match="expected shape"):
            model.encode(images[..., 0], labels)


@pytest.mark.parametrize("name,spectral_norm", [("cgan", False), ("cgan", True),
                                                ("cvaegan", False), ("cvaegan", True)])
def test_generator_terms_go_back_through_the_generated_images_passes_alone(batch, name,
                                                                            spectral_norm):
    """D (and cVAE-GAN's C) see real and generated images in separate passes
    (``LabelSplitModel.real_and_fake_passes``), so the input gradients of their first conv,
    which only the generator's terms need, run over the generated rows alone; with
    spectral norm D stays one pass over both."""
    from keras_lsvae.benchmarks.speed import live_operations

    model = tiny(name, spectral_norm=spectral_norm)
    images, labels = batch
    specs = (tf.TensorSpec(images.shape, tf.float32), tf.TensorSpec(labels.shape, tf.int32))
    graph = tf.function(model.train_step, autograph=False).get_concrete_function(specs).graph
    generated = 6 if name == "cgan" else 12  # cVAE-GAN: x_f and x_p
    for network, one_pass in [("discriminator", spectral_norm), ("classifier", False)]:
        if name == "cgan" and network == "classifier":
            continue
        rows = {op.outputs[0].shape[0] for op in live_operations(graph)
                if op.type == "Conv2DBackpropInput" and f"{network}_block0" in op.name}
        assert rows == ({6 + generated} if one_pass else {generated}), network
