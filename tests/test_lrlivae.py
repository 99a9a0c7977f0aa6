"""Lr-LiVAE: Algorithm 1's update structure, the inference API, save/load, bad input."""

import numpy as np
import pytest
import tensorflow as tf

from keras_lsvae import data
from keras_lsvae.benchmarks.speed import live_operations
from keras_lsvae.models import LrLiVAE
from keras_lsvae.models.base import Terms
from tests.helpers import image_batch, tiny_lrlivae


def _snapshot(variables):
    return [np.array(v.numpy()) for v in variables]


def _changed(before, variables):
    return [not np.allclose(b, v.numpy()) for b, v in zip(before, variables)]


def _one_step(model, groups=3):
    images, labels = image_batch(8, groups=groups)
    model.train_step((tf.constant(images), tf.constant(labels)))


@pytest.mark.parametrize("objective", LrLiVAE.OBJECTIVES)
def test_each_optimizer_moves_only_its_own_variables(objective):
    model = tiny_lrlivae()
    model.compile(learning_rate=0.0, learning_rates={objective: 1e-2})
    owned = {id(v) for v in model.objective_variables()[objective]}
    variables = model.trainable_variables
    before = _snapshot(variables)
    _one_step(model)
    changed = _changed(before, variables)
    moved_foreign = [v.path for v, c in zip(variables, changed) if c and id(v) not in owned]
    assert not moved_foreign, f"{objective} moved {moved_foreign}"
    assert any(c for v, c in zip(variables, changed) if id(v) in owned), f"{objective} idle"


def test_adversaries_never_move_the_networks_they_attack():
    # L_C^adv must not move Encoder^u; L_GD^adv must not move D; L_D^adv must not move θ.
    model = tiny_lrlivae()
    objectives = model.objective_variables()
    assert not {id(v) for v in objectives["latent_classifier"]} & {
        id(v) for v in model.encoder_u.trainable_variables}
    assert not {id(v) for v in objectives["decoder"]} & {
        id(v) for v in model.discriminator.trainable_variables}
    assert not {id(v) for v in objectives["discriminator"]} & {
        id(v) for v in model.decoder.trainable_variables}


def test_joint_objectives_partition_the_trainable_variables():
    model = tiny_lrlivae()
    joint = ("encoder_s", "encoder_u", "latent_classifier", "decoder", "discriminator")
    ids = [id(v) for name in joint for v in model.objective_variables()[name]]
    prior = {id(model.prior.means), id(model.prior.raw_variances)}
    assert len(ids) == len(set(ids))
    assert set(ids) | prior == {id(v) for v in model.trainable_variables}


def test_prior_moves_only_in_the_gm_stage():
    model = tiny_lrlivae(n_gm=0)
    model.compile(learning_rate=1e-2)
    before = _snapshot([model.prior.means, model.prior.raw_variances])
    _one_step(model, groups=1)
    assert not any(_changed(before, [model.prior.means, model.prior.raw_variances]))
    model = tiny_lrlivae(n_gm=2)
    model.compile(learning_rate=1e-2)
    before = _snapshot([model.prior.means, model.prior.raw_variances])
    _one_step(model, groups=3)
    assert all(_changed(before, [model.prior.means, model.prior.raw_variances]))


def test_gm_stage_uses_a_fresh_batch_per_iteration():
    # With lr only on "gm", two models differing only in the GM columns of the batch diverge,
    # and the joint column does not matter to the prior.
    images, labels = image_batch(8, groups=3)
    results = []
    for variant in range(2):
        model = tiny_lrlivae()
        model.compile(learning_rate=0.0, learning_rates={"gm": 1e-2})
        x = images.copy()
        if variant:
            x[:, 1] = np.flip(x[:, 1], axis=1)
        model.train_step((tf.constant(x), tf.constant(labels)))
        results.append(model.prior.means.numpy())
    assert not np.allclose(results[0], results[1])


def test_hsic_term_enters_only_the_encoder_u_objective():
    model = tiny_lrlivae(hsic_weight=10.0)
    model.compile(learning_rate=0.0, learning_rates={"encoder_u": 1e-2})
    images, labels = image_batch(8, groups=3)
    logs = model.train_step((tf.constant(images), tf.constant(labels)))
    assert float(logs["hsic"]) > 0
    x, y = tf.constant(images[:, -1]), tf.constant(labels[:, -1])
    with_hsic = model.compute_losses(x, y, training=False).objectives()
    del model.extensions["hsic"]  # the same networks without the term
    without = model.compute_losses(x, y, training=False).objectives()
    for name in ("encoder_s", "decoder", "discriminator", "latent_classifier"):
        assert float(with_hsic[name]) == pytest.approx(float(without[name]), rel=1e-5)
    assert float(with_hsic["encoder_u"]) > float(without["encoder_u"])


def test_consistency_term_is_the_gm_posterior_of_samples_and_swaps_in_the_decoder_only():
    model = tiny_lrlivae(consistency_weight=2.0)
    model.compile()
    images, labels = image_batch(8, groups=3)
    model.train_step((tf.constant(images), tf.constant(labels)))  # moving statistics != init
    x, y = tf.constant(images[:, -1]), tf.constant(labels[:, -1])
    result = model.compute_losses(x, y, training=False)  # "mode": z'_s = μ_y, z'_u = 0
    # By hand: decode the prior means (z_u = 0) and the swaps (ẑ_s of image i, μ_u of image
    # i − 1), encode with Encoder^s, cross-entropy of q(c | ẑ_s) (Eq. 8) against y.
    codes = model.encode(images[:, -1])
    samples = model.decode(tf.gather(model.prior.means, y), np.zeros((8, 3), np.float32))
    swaps = model.decode(codes["z_s"], np.roll(codes["z_u"], 1, axis=0))
    z_s = model.encoder_s(tf.concat([samples, swaps], 0), training=False)["z_s"]
    logits = model.prior.components().log_prob(z_s[:, None, :]).numpy()
    log_q = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -np.mean(log_q[np.arange(16), np.concatenate([labels[:, -1]] * 2)])
    assert float(result.logs["consistency"]) == pytest.approx(expected, rel=1e-4)
    # It enters θ's objective only, with its weight.
    del model.extensions["consistency"]
    without = model.compute_losses(x, y, training=False).objectives()
    for name in ("encoder_s", "encoder_u", "discriminator", "latent_classifier"):
        assert float(result.objectives()[name]) == pytest.approx(float(without[name]),
                                                                  rel=1e-5)
    assert float(result.objectives()["decoder"]) == pytest.approx(
        float(without["decoder"]) + 2.0 * expected, rel=1e-4)


@pytest.mark.parametrize("all_groups", [False, True])
def test_hsic_all_groups_pools_the_gm_columns_into_the_dependence_estimate(all_groups):
    # lr only on Encoder^u: changing the GM-stage columns of the grouped batch changes its
    # update exactly when the HSIC is estimated on every column.
    images, labels = image_batch(8, groups=3)
    results = []
    for variant in range(2):
        model = tiny_lrlivae(hsic_weight=10.0, hsic_all_groups=all_groups)
        model.compile(learning_rate=0.0, learning_rates={"encoder_u": 1e-2})
        x = images.copy()
        if variant:
            x[:, 0] = np.flip(x[:, 0], axis=1)
        model.train_step((tf.constant(x), tf.constant(labels)))
        results.append(_snapshot(model.encoder_u.trainable_variables))
    differs = any(not np.allclose(a, b) for a, b in zip(*results))
    assert differs == all_groups


def test_wrong_group_count_is_rejected():
    model = tiny_lrlivae(n_gm=2)
    model.compile()
    images, labels = image_batch(4, groups=2)
    with pytest.raises(ValueError, match="data_group=3"):
        model.train_step((tf.constant(images), tf.constant(labels)))


# Every option that adds variables or randomness to a step: spectral norm (power-iteration
# vectors), hinge, the adversary's batch standardisation (moving statistics), HSIC on all groups
# (a second Encoder^u pass), MMD (prior draws), and unlabeled data (its own branch).
EVERY_OPTION = dict(spectral_norm=True, gan_loss="hinge", adversary_standardize=True,
                    hsic_weight=1.0, hsic_all_groups=True, mmd_weight=1.0)


@pytest.mark.parametrize("options", [{}, EVERY_OPTION], ids=["defaults", "every_option"])
def test_evaluate_changes_no_variable(options):
    # 16×16 so the encoders have batch norm too (an 8×8 encoder has one conv block, unnormed).
    model = tiny_lrlivae(input_shape=(16, 16, 1), **options)
    model.compile(learning_rate=1e-2)
    images, labels = image_batch(8, shape=(16, 16, 1), groups=3)
    unlabeled, _ = image_batch(8, shape=(16, 16, 1), seed=1)
    batch = {"labeled": (images, labels), "unlabeled": unlabeled}
    dataset = tf.data.Dataset.from_tensors(batch).repeat(2)
    model.fit(dataset, epochs=1, verbose=0)  # moving statistics and SN vectors away from init
    before = _snapshot(model.variables)  # trainable, BN statistics, SN vectors, seed states
    logs = model.evaluate(dataset, verbose=0, return_dict=True)
    assert {"rec", "kl", "lkd", "gm_cls", "d_loss", "u_rec"} <= set(logs)
    for b, v in zip(before, model.variables):
        np.testing.assert_array_equal(b, v.numpy(), err_msg=v.path)
    # and evaluation is repeatable (to float rounding: TF's CPU reductions may split work over
    # threads differently between calls, which moved gm_loss by 1 ulp in one CI run)
    again = model.evaluate(dataset, verbose=0, return_dict=True)
    assert again.keys() == logs.keys()
    for key, value in logs.items():
        assert again[key] == pytest.approx(value, rel=1e-6, abs=1e-7), key


def test_hsic_all_groups_keeps_the_joint_batch_statistics_its_own():
    # The GM-stage columns join the HSIC estimate only: the joint batch's z_u, reconstruction
    # and every other joint-stage loss (batch-norm statistics in training mode) are those of
    # the joint batch alone, and the moving statistics are updated by the joint batch alone.
    options = dict(input_shape=(16, 16, 1), hsic_weight=1.0, train_sampling="mode")
    images, labels = image_batch(8, shape=(16, 16, 1), groups=3)
    x, y = tf.constant(images[:, -1]), tf.constant(labels[:, -1])
    extra = (tf.constant(images[:, :2].reshape(16, 16, 16, 1)),
             tf.constant(labels[:, :2].reshape(16)))
    model = tiny_lrlivae(hsic_all_groups=True, **options)
    assert any("moving" in v.path for v in model.encoder_u.non_trainable_variables)
    pooled = model.compute_losses(x, y, training=True, dependence_batch=extra).logs
    alone = model.compute_losses(x, y, training=True).logs
    for key in ("rec", "kl", "adv_encoder", "adv_classifier", "d_loss", "g_loss", "lkd"):
        assert float(pooled[key]) == float(alone[key]), key
    assert float(pooled["hsic"]) != float(alone["hsic"])  # the extra columns are used
    statistics = []
    for all_groups in (False, True):
        model = tiny_lrlivae(hsic_all_groups=all_groups, **options)
        model.compile(learning_rate=0.0)
        model.train_step((tf.constant(images), tf.constant(labels)))
        statistics.append(_snapshot(model.non_trainable_variables))
    for a, b in zip(*statistics):
        np.testing.assert_array_equal(a, b)


def test_semi_supervised_step_uses_eq11_and_skips_label_losses():
    model = tiny_lrlivae()
    model.compile(learning_rate=0.0, learning_rates={"latent_classifier": 1e-2})
    before = _snapshot(model.latent_classifier.trainable_variables)
    images, _ = image_batch(8)
    logs = model.train_step({"unlabeled": tf.constant(images)})
    assert {"u_rec", "u_kl", "u_lkd"} <= set(logs) and "adv_classifier" not in logs
    # no labels -> L_C^adv is not applied
    assert not any(_changed(before, model.latent_classifier.trainable_variables))
    # L_lkd towards N(μ_t, Σ_t) of Eq. 11, written out in numpy
    means, variances = model.prior.means.numpy(), model.prior.variances().numpy()
    mean_t = means.mean(0)
    var_t = variances.mean(0) + (means**2).mean(0) - mean_t**2
    z_s = model.encoder_s(images, training=False)["z_s"].numpy()
    expected = np.mean(0.5 * np.sum((z_s - mean_t) ** 2 / var_t + np.log(2 * np.pi * var_t), -1))
    result = model.compute_losses(unlabeled=tf.constant(images), training=False)
    assert float(result.logs["u_lkd"]) == pytest.approx(expected, rel=1e-5)


def test_mixed_labeled_and_unlabeled_step():
    model = tiny_lrlivae()
    model.compile()
    images, labels = image_batch(8, groups=3)
    logs = model.train_step({"labeled": (tf.constant(images), tf.constant(labels)),
                             "unlabeled": tf.constant(images[:, 0])})
    assert {"gm_cls", "rec", "u_rec"} <= set(logs)


def _distinct_prior(model):
    """Prior weights far from their initial values, distinct per class and dimension."""
    rng = np.random.default_rng(9)
    model.prior.means.assign(rng.normal(size=(3, 4)).astype("float32") * 3)
    model.prior.raw_variances.assign(rng.normal(size=(3, 4)).astype("float32"))
    return model.prior.means.numpy(), model.prior.variances().numpy()


def _record_decoded_codes(model):
    calls = []
    decode = model.decode
    model.decode = lambda z_s, z_u: calls.append((np.asarray(z_s), np.asarray(z_u))) or decode(
        z_s, z_u)
    return calls


def test_inference_api_computes_the_documented_quantities():
    model = tiny_lrlivae()
    means, variances = _distinct_prior(model)
    images, labels = image_batch(5)
    codes = model.encode(images)
    np.testing.assert_array_equal(codes["z_u"], codes["z_u_mean"])  # mode by default
    # q(c|z_s) of Eq. 8 with uniform p(c), from the closed-form Gaussian log-densities
    z = np.asarray(codes["z_s"], np.float64)[:, None]
    log_n = -0.5 * np.sum((z - means) ** 2 / variances + np.log(2 * np.pi * variances), -1)
    posterior = np.exp(log_n - log_n.max(-1, keepdims=True))
    np.testing.assert_allclose(model.predict_labels(images),
                               posterior / posterior.sum(-1, keepdims=True), rtol=1e-4,
                               atol=1e-6)
    # z_s ~ N(μ_c, σ²_c), z_u ~ N(0, I): moments of many draws
    requested = np.repeat([0, 2], 4000)
    z_s, z_u = map(np.asarray, model.sample_latents(requested, seed=1))
    for c in (0, 2):
        draws = z_s[requested == c]
        np.testing.assert_allclose(draws.mean(0), means[c], atol=4 * np.sqrt(variances[c] / 4000)
                                   .max() + 1e-3)
        np.testing.assert_allclose(draws.var(0), variances[c], rtol=0.1)
    np.testing.assert_allclose(z_u.mean(0), 0.0, atol=0.05)
    np.testing.assert_allclose(z_u.var(0), 1.0, rtol=0.1)
    np.testing.assert_array_equal(model.generate(labels, seed=1), model.generate(labels, seed=1))
    assert not np.allclose(model.generate(labels, seed=1), model.generate(labels, seed=2))
    swapped = model.swap(images, images[::-1])
    expected = model.decode(codes["z_s"], model.encode(images[::-1])["z_u"])
    np.testing.assert_allclose(swapped, expected, atol=1e-6)
    # interpolate: the decoded straight line between the two images' codes
    calls = _record_decoded_codes(model)
    out = model.interpolate(images[:2], images[2:4], num_steps=4)
    assert out.shape == (2, 4, 8, 8, 1)
    (z_s, _), = calls
    z_a, z_b = np.asarray(codes["z_s"][:2]), np.asarray(codes["z_s"][2:4])
    alphas = np.linspace(0, 1, 4)[None, :, None]
    np.testing.assert_allclose(z_s.reshape(2, 4, 4), (1 - alphas) * z_a[:, None]
                               + alphas * z_b[:, None], atol=1e-5)
    # traverse: row d sets z_u[d] to each value, every other coordinate fixed
    calls.clear()
    assert model.traverse(0, dims=[0, 2], values=[-1, 0, 1]).shape == (2, 3, 8, 8, 1)
    for (z_s, z_u), d in zip(calls, [0, 2]):
        np.testing.assert_array_equal(z_u[:, d], [-1, 0, 1])
        others = np.delete(z_u, d, axis=1)
        np.testing.assert_array_equal(others, np.repeat(others[:1], 3, axis=0))
        np.testing.assert_array_equal(z_s, np.repeat(z_s[:1], 3, axis=0))


@pytest.mark.parametrize("protocol", ["interpolate_zs", "interpolate_zu"])
def test_interpolations_follow_section_4_3(protocol):
    # (1) z_u fixed; z^(i) = α z_1 + (1 − α) z_2 from N(0, I), z_s = z ⊙ σ_c + μ_c with the same
    # z^(i) for every class under one seed (Fig. 4a's columns). (2) z_s fixed at one draw from
    # class c, z_u on a line between two N(0, I) draws.
    model = tiny_lrlivae()
    means, variances = _distinct_prior(model)
    calls = _record_decoded_codes(model)
    for c in (0, 1):
        assert getattr(model, protocol)(c, num_steps=5, seed=4).shape == (5, 8, 8, 1)
    (zs0, zu0), (zs1, zu1) = calls
    standard0 = (zs0 - means[0]) / np.sqrt(variances[0])
    standard1 = (zs1 - means[1]) / np.sqrt(variances[1])
    np.testing.assert_allclose(standard0, standard1, atol=1e-4)  # same z across classes
    np.testing.assert_array_equal(zu0, zu1)
    moving, fixed = (standard0, zu0) if protocol == "interpolate_zs" else (zu0, standard0)
    np.testing.assert_allclose(fixed, np.repeat(fixed[:1], 5, axis=0), atol=1e-5)
    steps = np.diff(moving, axis=0)  # evenly spaced points on a line, not a constant
    np.testing.assert_allclose(steps, np.repeat(steps[:1], 4, axis=0), atol=1e-4)
    assert np.abs(steps).max() > 1e-2


@pytest.mark.parametrize("mask_kind", ["right_half", "eyes_band", "bottom_half",
                                       "random_squares"])
def test_inpaint_keeps_known_pixels(mask_kind):
    from keras_lsvae.masks import make_mask
    model = tiny_lrlivae()
    images, _ = image_batch(3)
    mask = make_mask(mask_kind, 8, 8)
    result = np.asarray(model.inpaint(images, mask))
    keep = np.broadcast_to(mask == 0, images.shape)
    np.testing.assert_array_equal(result[keep], images[keep])
    # the missing pixels come from the decoder of the corrupted image
    corrupted = images * (1 - mask)
    np.testing.assert_allclose(result[~keep], np.asarray(model.reconstruct(corrupted))[~keep],
                               atol=1e-6)


def test_inpaint_by_map_search_fits_visible_pixels_better():
    from keras_lsvae.masks import make_mask
    model = tiny_lrlivae()
    images, _ = image_batch(4)
    mask = make_mask("right_half", 8, 8)
    codes = model.encode(images * (1 - mask))
    before = np.asarray(model.decode(codes["z_s"], codes["z_u"]))
    z_s, z_u = model._map_codes(tf.constant(images), tf.constant(1 - mask[None]), codes["z_s"],
                                codes["z_u"], steps=30, learning_rate=0.05, pixel_noise=0.1)
    after = np.asarray(model.decode(z_s, z_u))
    visible = np.broadcast_to(mask == 0, images.shape)
    assert np.mean((after - images)[visible] ** 2) < np.mean((before - images)[visible] ** 2)
    result = np.asarray(model.inpaint(images, mask, method="optimize", steps=5))
    np.testing.assert_array_equal(result[visible], images[visible])


@pytest.mark.parametrize("call,match", [
    (lambda m, x: m.generate([0, 3]), r"labels: class ids must lie in \[0, 3\)"),
    (lambda m, x: m.generate([-1]), r"class ids must lie"),
    (lambda m, x: m.predict_labels(x * 2), r"values must lie in \[0, 1\]"),
    (lambda m, x: m.predict_labels(np.full_like(x, np.nan)), "NaN"),
    (lambda m, x: m.encode(x[..., :1, :]), "expected shape"),
    (lambda m, x: m.inpaint(x, np.ones((4, 4))), "mask: expected shape"),
    (lambda m, x: m.inpaint(x, np.full((8, 8), 0.5)), "0 \\(kept\\) or 1"),
    (lambda m, x: m.inpaint(x, "left_ear"), "unknown mask"),
    (lambda m, x: m.inpaint(x, "right_half", method="magic"), "method must be"),
    (lambda m, x: m.swap(x, x[:2]), "as many"),
    (lambda m, x: m.swap(x[0], x[0]), "images_s: expected shape"),
    (lambda m, x: m.traverse(0, dims=[7]), r"dims: expected .* in \[0, 3\)"),
    (lambda m, x: m.traverse(0, dims=[]), "dims: expected one or more"),
    (lambda m, x: m.traverse(0, dims=[0], values=[]), "values: expected one or more"),
    (lambda m, x: m.generate([]), "labels: empty"),
    (lambda m, x: m.generate(["a"]), "labels: expected integer class ids"),
    (lambda m, x: m.generate([[0, 1, 0]]), "labels: expected a 1-D vector"),
    (lambda m, x: m.generate([0.5]), "labels: class ids must be integers"),
    (lambda m, x: m.decode(np.zeros((0, 4)), np.zeros((0, 3))), "decode: expected .* N >= 1"),
    (lambda m, x: m.decode(np.zeros((2, 4)), np.zeros((3, 3))), "decode: expected .* same N"),
    (lambda m, x: m.decode(np.zeros(4), np.zeros(3)), r"decode: expected z_s of shape \(N, 4\)"),
    (lambda m, x: m.interpolate(x, x[:2]), "as many images_a as images_b"),
    (lambda m, x: m.interpolate(x[0], x[0]), "images_a: expected shape"),
    (lambda m, x: m.interpolate(x, x, num_steps=0), "num_steps must be a positive integer"),
    (lambda m, x: m.interpolate_zs(0, num_steps=0), "num_steps must be a positive integer"),
    (lambda m, x: m.interpolate_zu(0, num_steps=-1), "num_steps must be a positive integer"),
    (lambda m, x: m.interpolate_zs(5), r"label: class ids must lie in \[0, 3\)"),
    (lambda m, x: m.inpaint(x, "right_half", method="optimize", pixel_noise=0),
     "pixel_noise must be a positive number"),
    (lambda m, x: m.inpaint(x, "right_half", method="optimize", pixel_noise=-0.1),
     "pixel_noise must be a positive number"),
    (lambda m, x: m.inpaint(x, "right_half", method="optimize", steps=0),
     "steps must be a positive integer"),
    (lambda m, x: m.inpaint(x, "right_half", method="optimize", steps=2.5),
     "steps must be a positive integer"),
    (lambda m, x: m.inpaint(x, "right_half", method="optimize", learning_rate=0.0),
     "learning_rate must be a positive number"),
    (lambda m, x: m.inpaint(x, "right_half", iterations=0), "iterations must be a positive"),
    (lambda m, x: m.encode(x, batch_size=0), "batch_size must be a positive integer"),
    (lambda m, x: m.predict_labels(x, batch_size=-4), "batch_size must be a positive integer"),
])
def test_bad_arguments_raise_clear_errors(call, match):
    model = tiny_lrlivae()
    images, _ = image_batch(3)
    with pytest.raises(ValueError, match=match):
        call(model, images)


def _fit_on(model, images, labels=None):
    data = images if labels is None else (images, labels)
    if labels is None:
        data = {"unlabeled": images}
    model.fit(tf.data.Dataset.from_tensors(data), epochs=1, verbose=0)


def _evaluate_on(model, images, labels=None):
    data = {"unlabeled": images} if labels is None else (images, labels)
    model.evaluate(tf.data.Dataset.from_tensors(data), verbose=0)


@pytest.fixture(scope="module")
def shared_model():
    """One compiled model for the bad-data cases: the in-graph checks then fail inside one
    traced step instead of a new trace per case (nothing is trained: every case fails)."""
    model = tiny_lrlivae()
    model.compile()
    return model


@pytest.mark.parametrize("run", [_fit_on, _evaluate_on], ids=["fit", "evaluate"])
@pytest.mark.parametrize("images,labels,error,match", [
    # static: at trace time
    ("uint8", None, ValueError, "images: .*got dtype uint8; divide uint8 images by 255"),
    (None, "one_hot", ValueError, r"labels: expected class ids of shape \(B,\).*one-hot"),
    (None, "float", ValueError, "labels: expected class ids of shape"),  # float one-hot
    # in-graph assertions
    ("above_1", None, tf.errors.InvalidArgumentError, r"images: values must lie in \[0, 1\]"),
    ("below_0", None, tf.errors.InvalidArgumentError, r"images: values must lie in \[0, 1\]"),
    ("nan", None, tf.errors.InvalidArgumentError, "images: contain NaN"),
    (None, "too_large", tf.errors.InvalidArgumentError, r"labels: class ids must lie in \[0, 3\)"),
    (None, "negative", tf.errors.InvalidArgumentError, r"labels: class ids must lie in \[0, 3\)"),
    (None, "fractional", tf.errors.InvalidArgumentError, "labels: class ids must be integers"),
    ("nan", "unlabeled", tf.errors.InvalidArgumentError, "images: contain NaN"),
])
def test_fit_and_evaluate_reject_data_that_would_mistrain(run, images, labels, error, match,
                                                          shared_model):
    model = shared_model
    x, y = image_batch(6)
    x = {None: x, "uint8": (x * 255).astype("uint8"), "above_1": x * 255, "below_0": x - 0.5,
         "nan": np.where(x > 0.9, np.nan, x).astype("float32")}[images]
    y = {None: y, "one_hot": np.eye(3, dtype="int32")[y], "float": np.eye(3, dtype="float32")[y],
         "too_large": y + 1, "negative": y - 1, "fractional": y + 0.5,
         "unlabeled": None}[labels]
    with pytest.raises(error, match=match):
        run(model, x, y)


def test_grouped_batches_pass_the_label_checks():
    # (B, G) labels go with (B, G, H, W, C) images; labels on the edge of [0, K) are fine.
    model = tiny_lrlivae()
    model.compile()
    images, labels = image_batch(6, groups=3)
    labels[0] = [0, 2, 2]
    images[0, 0] = 0.0
    images[0, 1] = 1.0
    model.fit(tf.data.Dataset.from_tensors((images, labels)), epochs=1, verbose=0)
    model = tiny_lrlivae()  # a fresh trace (a retrace may relax the ranks to unknown)
    model.compile()
    with pytest.raises(ValueError, match=r"labels: expected class ids of shape \(B, G\)"):
        model.fit(tf.data.Dataset.from_tensors((images, labels[:, 0])), epochs=1, verbose=0)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="loss_weighting"):
        tiny_lrlivae(loss_weighting="mine")
    with pytest.raises(ValueError, match="gan_loss"):
        tiny_lrlivae(gan_loss="wgan")
    with pytest.raises(ValueError, match="adversary_input.code"):
        tiny_lrlivae(extensions={"adversary_input": {"code": "both"}})
    with pytest.raises(ValueError, match="hsic.weight"):
        tiny_lrlivae(extensions={"hsic": {"weight": -1.0}})
    with pytest.raises(ValueError, match="unknown parameters"):
        tiny_lrlivae(extensions={"mmd": {"wieght": 1.0}})
    with pytest.raises(ValueError, match="unknown extension 'hsci'"):
        tiny_lrlivae(extensions={"hsci": {}})
    with pytest.raises(ValueError, match="image size"):
        tiny_lrlivae(input_shape=(12, 12, 1))
    with pytest.raises(ValueError, match=r"got 28; pass --image_size=32 \(or image_size=32 to "
                                         r"keras_lsvae.data.load\) to resize"):
        tiny_lrlivae(input_shape=(28, 28, 1))


def test_learning_rate_multipliers_reach_their_optimizers():
    model = tiny_lrlivae(variance_lr_multiplier=0.5, adversary_lr_multiplier=4.0)
    model.compile(learning_rate=1e-3)
    rates = {k: float(o.learning_rate) for k, o in model.objective_optimizers.items()}
    assert rates["gm_variance"] == pytest.approx(5e-4)
    assert rates["latent_classifier"] == pytest.approx(4e-3)
    assert rates["decoder"] == pytest.approx(1e-3)


def test_loss_weightings_follow_code_or_paper():
    code = tiny_lrlivae()
    assert code.rec_weight == pytest.approx(10 / 64) and code.kl_weight == pytest.approx(1 / 3)
    # as documented: the "code" weight on ½Σ(x − x')² is 5 × the per-pixel mean squared error
    # (half the authors' code's 10 ×), and 20/N_pixel gives the code's exactly
    images = image_batch(4)[0]
    x, y = tf.constant(images), tf.constant(images[::-1])
    mse = float(tf.reduce_mean(tf.square(x - y)))
    from keras_lsvae import losses
    assert code.rec_weight * float(losses.reconstruction_loss(x, y)) == pytest.approx(5 * mse,
                                                                                      rel=1e-5)
    exact = tiny_lrlivae(rec_weight=20 / 64, zu_rec_weight=20 / 64)
    assert exact.rec_weight * float(losses.reconstruction_loss(x, y)) == pytest.approx(
        10 * mse, rel=1e-5)
    paper = tiny_lrlivae(loss_weighting="paper")
    assert paper.rec_weight == 1.0 and paper.zu_rec_weight == pytest.approx(1 / 3)
    assert paper.kl_weight == pytest.approx(10 / 64)
    assert tiny_lrlivae(kl_weight=0.5).kl_weight == 0.5


def _fit_and_compare(model, dataset, steps, keys):
    model.compile(learning_rate=2e-3)
    first = model.evaluate(dataset.take(4), verbose=0, return_dict=True)
    model.fit(dataset.repeat(), steps_per_epoch=steps, epochs=1, verbose=0)
    last = model.evaluate(dataset.take(4), verbose=0, return_dict=True)
    for key in keys:
        assert last[key] < first[key], f"{key}: {first[key]} -> {last[key]}"


def test_training_on_toy2d_lowers_losses():
    info = data.info("toy2d")
    model = LrLiVAE(info.input_shape, info.num_classes, zs_dim=2, zu_dim=2, n_gm=1, seed=0)
    dataset = data.load("toy2d", "train", 64, group=model.data_group, seed=0)
    _fit_and_compare(model, dataset, 60, ["gm_cls", "rec"])


def test_training_on_digits_lowers_losses():
    info = data.info("digits", image_size=8)
    model = LrLiVAE(info.input_shape, info.num_classes, zs_dim=8, zu_dim=4, width=8, n_gm=1,
                    latent_classifier_units=(32,), seed=0)
    dataset = data.load("digits", "train", 32, group=model.data_group, seed=0, image_size=8)
    _fit_and_compare(model, dataset, 40, ["gm_cls", "rec"])


def test_mmd_term_enters_only_the_encoder_u_objective():
    model = tiny_lrlivae(mmd_weight=5.0)
    images, labels = image_batch(8)
    x, y = tf.constant(images), tf.constant(labels)
    with_mmd = model.compute_losses(x, y, training=False)
    assert float(with_mmd.logs["mmd"]) > 0.0
    del model.extensions["mmd"]  # the same networks without the term
    without = model.compute_losses(x, y, training=False)
    assert "mmd" not in without.logs
    for name in ("encoder_s", "decoder", "discriminator", "latent_classifier"):
        assert float(with_mmd.objectives()[name]) == pytest.approx(
            float(without.objectives()[name]), rel=1e-5)
    assert float(with_mmd.objectives()["encoder_u"]) > float(without.objectives()["encoder_u"])
    restored = LrLiVAE.from_config(tiny_lrlivae(mmd_weight=5.0).get_config())
    assert restored.extension("mmd").weight == 5.0


# ----------------------------------------------------------------------------------------------
# Which loss each optimizer steps on (Algorithm 1 lines 6–8 and 25–29). The expected objectives
# are written out below from the documented formulas, in closed form and independently of
# keras_lsvae.losses; the model's optimizers are intercepted to record the gradients they are
# asked to apply. A term missing from an objective, a term in the wrong objective or a wrong
# weight changes a recorded gradient. Distinct weights make a swapped weight visible too.
WEIGHTS = dict(rec_weight=0.3, zu_rec_weight=0.7, kl_weight=0.9, lkd_weight=0.2, adv_weight=1.3,
               gan_weight=0.6)


def _record_applied_gradients(model):
    applied = {}
    for name, optimizer in model.objective_optimizers.items():
        def record(pairs, name=name, apply=optimizer.apply_gradients):
            pairs = list(pairs)
            applied.setdefault(name, []).append({id(v): np.array(g) for g, v in pairs})
            return apply(pairs)
        optimizer.apply_gradients = record
    return applied


def _log_normal(z, mean, variance):
    return -0.5 * tf.reduce_sum(tf.square(z - mean) / variance + tf.math.log(2 * np.pi * variance),
                                -1)


def _documented_joint_objectives(model, x, y):
    """Lines 11–29 with train_sampling="mode" (z_u = μ_u, z'_s = μ_y, z'_u = 0)."""
    mean = lambda t: tf.reduce_mean(t)  # noqa: E731
    z_s = model.encoder_s(x, training=True)["z_s"]
    enc_u = model.encoder_u(x, training=True)
    mu, log_var = enc_u["mean"], enc_u["log_var"]
    x_f = model.decoder([z_s, mu], training=True)
    rec = mean(0.5 * tf.reduce_sum(tf.square(x - x_f), [1, 2, 3]))
    kl = mean(0.5 * tf.reduce_sum(tf.exp(log_var) + tf.square(mu) - 1.0 - log_var, -1))
    means, variances = model.prior.means, model.prior.variances()
    d = lambda images, codes: model.discriminator([images, codes], training=True)  # noqa: E731
    if y is None:  # §3.6: L_lkd towards N(μ_t, Σ_t) of Eq. 11, D without a label, no x'_p
        mean_t = tf.reduce_mean(means, 0)
        var_t = (tf.reduce_mean(variances, 0) + tf.reduce_mean(tf.square(means), 0)
                 - tf.square(mean_t))
        lkd = mean(-_log_normal(z_s, mean_t, var_t))
        codes = tf.zeros([x.shape[0], model.num_classes])
        fakes = [x_f]
        adv_e = adv_c = 0.0
    else:
        lkd = mean(-_log_normal(z_s, tf.gather(means, y), tf.gather(variances, y)))
        log_q = tf.nn.log_softmax(model.latent_classifier(mu, training=True))
        adv_e = mean(-tf.reduce_mean(log_q, -1))  # Eq. 5
        adv_c = mean(-tf.gather(log_q, y, axis=1, batch_dims=1))  # Eq. 4
        codes = tf.one_hot(y, model.num_classes)
        x_p = model.decoder([tf.gather(means, y), tf.zeros_like(mu)], training=True)
        fakes = [x_f, x_p]
    d_loss = mean(tf.nn.softplus(-d(x, codes))) + sum(mean(tf.nn.softplus(d(f, codes)))
                                                      for f in fakes)
    g_loss = sum(mean(tf.nn.softplus(-d(f, codes))) for f in fakes)
    w = WEIGHTS
    objectives = {
        "encoder_s": w["rec_weight"] * rec + w["lkd_weight"] * lkd,  # line 25
        "encoder_u": w["adv_weight"] * adv_e + w["kl_weight"] * kl + w["zu_rec_weight"] * rec,
        "decoder": w["rec_weight"] * rec + w["gan_weight"] * g_loss,  # line 28
        "discriminator": d_loss,  # line 29
    }
    if y is not None:
        objectives["latent_classifier"] = adv_c  # line 27
    return objectives


@pytest.mark.parametrize("labeled", [True, False], ids=["labeled", "unlabeled"])
def test_each_optimizer_steps_on_its_documented_objective(labeled):
    model = tiny_lrlivae(n_gm=0, train_sampling="mode", **WEIGHTS)
    model.compile(learning_rate=1e-3)
    images, labels = image_batch(8)
    x, y = tf.constant(images), tf.constant(labels)
    variables = model.objective_variables()
    with tf.GradientTape(persistent=True) as tape:
        expected = _documented_joint_objectives(model, x, y if labeled else None)
    expected = {name: {id(v): np.array(g) for g, v in zip(tape.gradient(loss, variables[name]),
                                                          variables[name]) if g is not None}
                for name, loss in expected.items()}
    applied = _record_applied_gradients(model)
    model.train_step((x, y) if labeled else {"unlabeled": x})
    assert set(applied) == set(expected)
    for name, grads in expected.items():
        (got,) = applied[name]
        assert set(got) == set(grads), name
        for key, grad in grads.items():
            np.testing.assert_allclose(got[key], grad, rtol=1e-4, atol=1e-6, err_msg=name)


def test_gm_stage_optimizers_step_on_eq9():
    # Lines 3–8: ψ with μ_c, and Σ_c, step on L_GM = L_cls + λ_lkd L_lkd (Eq. 7–9), with the
    # margin α on the true class's Mahalanobis term; one update per GM-stage column.
    model = tiny_lrlivae(n_gm=2, lkd_weight=0.2, margin=0.5)
    model.compile(learning_rate=0.0)  # the columns' gradients are then all at the same weights
    images, labels = image_batch(8, groups=3)
    variables = model.objective_variables()
    expected = []
    for k in range(2):
        x, y = tf.constant(images[:, k]), tf.constant(labels[:, k])
        with tf.GradientTape(persistent=True) as tape:
            z = model.encoder_s(x, training=True)["z_s"]
            means, variances = model.prior.means, model.prior.variances()
            log_n = _log_normal(z[:, None, :], means[None], variances[None])  # (B, K)
            distance = tf.reduce_sum(tf.square(z - tf.gather(means, y))
                                     / tf.gather(variances, y), -1)
            logits = log_n - 0.5 * 0.5 * distance[:, None] * tf.one_hot(y, 3)
            cls = tf.reduce_mean(-tf.gather(tf.nn.log_softmax(logits), y, axis=1, batch_dims=1))
            lkd = tf.reduce_mean(-tf.gather(log_n, y, axis=1, batch_dims=1))
            loss = cls + 0.2 * lkd
        expected.append({name: {id(v): np.array(g) for g, v in zip(
            tape.gradient(loss, variables[name]), variables[name])}
            for name in ("gm", "gm_variance")})
    applied = _record_applied_gradients(model)
    model.train_step((tf.constant(images), tf.constant(labels)))
    for name in ("gm", "gm_variance"):
        assert len(applied[name]) == 2
        for got, want in zip(applied[name], expected):
            assert set(got) == set(want[name])
            for key, grad in want[name].items():
                np.testing.assert_allclose(got[key], grad, rtol=1e-4, atol=1e-6, err_msg=name)


def test_fit_prior_variances_is_the_lkd_maximiser_with_the_means_fixed():
    # Classes 0 and 1 only: class 2 (unseen, as in §3.6) keeps its variances.
    model = tiny_lrlivae()
    means, variances = _distinct_prior(model)
    images, labels = image_batch(20)
    labels = labels % 2
    model.fit_prior_variances(images, labels)
    z = np.asarray(model.encode(images)["z_s"], np.float64)
    fitted = model.prior.variances().numpy()
    for c in (0, 1):  # closed form: mean squared distance to the (unchanged) learned mean
        np.testing.assert_allclose(fitted[c], np.mean((z[labels == c] - means[c]) ** 2, 0),
                                   rtol=1e-4)
    np.testing.assert_allclose(fitted[2], variances[2], rtol=1e-6)
    np.testing.assert_array_equal(model.prior.means.numpy(), means)
    # It is the maximiser of the labels' log-likelihood (L_lkd, Eq. 7): scaling any class's
    # variances up or down lowers it.
    def log_likelihood(v):
        return np.sum([-0.5 * np.sum(np.log(2 * np.pi * v[y]) + (zi - means[y]) ** 2 / v[y])
                       for zi, y in zip(z, labels)])
    best = log_likelihood(fitted.astype(np.float64))
    for c in (0, 1):
        for factor in (0.8, 1.25):
            other = fitted.astype(np.float64).copy()
            other[c] *= factor
            assert log_likelihood(other) < best
    # Generation samples from the fitted components
    samples = np.asarray(model.sample_latents(np.zeros(4000, np.int32), seed=1)[0])
    np.testing.assert_allclose(samples.var(0), fitted[0], rtol=0.1)
    with pytest.raises(ValueError, match="one class id per image"):
        model.fit_prior_variances(images, labels[:3])


def test_extensions_round_trip_through_the_config():
    model = tiny_lrlivae(extensions={"prior_refit": {}, "hsic": {"weight": 2.0}})
    restored = LrLiVAE.from_config(model.get_config())
    assert set(restored.extensions) == {"prior_refit", "hsic"}
    assert restored.extension("hsic").weight == 2.0
    assert not tiny_lrlivae().extensions


def test_configs_saved_with_the_old_arguments_load_as_extensions():
    config = tiny_lrlivae().get_config()
    del config["extensions"]
    config.update(hsic_weight=3.0, mmd_weight=0.0, refit_prior_variances=True, margin=0.5,
                  adversary_steps=1)
    restored = LrLiVAE.from_config(config)
    assert set(restored.extensions) == {"hsic", "prior_refit", "gm_margin"}
    assert restored.extension("hsic").weight == 3.0 and restored.margin == 0.5


@pytest.mark.parametrize("spectral_norm", [False, True])
def test_discriminator_passes_and_where_the_generator_loss_goes_back(spectral_norm):
    """D's logits of [x, x'_f, x'_p] are those of one pass over all three; without spectral
    norm the fakes have their own pass, so the generator loss's backward through D (its input
    gradient) runs over the 2B fake rows only, not the real ones; with spectral norm
    (a power iteration per training call) D stays one pass of 3B rows."""
    model = tiny_lrlivae(spectral_norm=spectral_norm)
    model.compile()
    batch = image_batch(4, num_classes=3, groups=model.data_group)
    images, labels = batch[0][:, 0], batch[1][:, 0]
    codes = tf.one_hot(labels, 3)
    rng = np.random.default_rng(1)
    fakes = [tf.constant(rng.uniform(size=images.shape).astype("float32")) for _ in range(2)]
    expected = model.discriminator([tf.concat([images, *fakes], 0), tf.concat([codes] * 3, 0)])
    real_logits, fake_logits, _ = model._discriminate(images, fakes, codes, training=False,
                                                      terms=Terms())
    np.testing.assert_allclose(tf.concat([real_logits, *fake_logits], 0), expected, rtol=1e-5,
                               atol=1e-6)
    specs = tf.nest.map_structure(lambda t: tf.TensorSpec(t.shape, tf.as_dtype(t.dtype)), batch)
    graph = tf.function(model.train_step, autograph=False).get_concrete_function(specs).graph
    rows = {op.outputs[0].shape[0] for op in live_operations(graph)  # the ops that run
            if op.type == "Conv2DBackpropInput" and "discriminator_block0" in op.name}
    assert rows == ({3 * 4} if spectral_norm else {2 * 4})
