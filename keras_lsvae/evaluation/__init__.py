"""Evaluation of trained models with the papers' protocols: every protocol lives here once;
``scripts/evaluate.py`` and the benchmark suites (keras_lsvae/benchmarks/) only choose data,
configs and seeds and call it (protocols and commands: docs/evaluation.md).

* :mod:`~keras_lsvae.evaluation.classifiers`: the real data (:class:`EvalData`,
  :func:`load_eval_data`) and the evaluation classifiers that score generated and edited
  images (:func:`get_eval_classifier`, cached per data set; :func:`fresh_classifier` and
  :func:`blur_robust_classifier` for the suites).
* :mod:`~keras_lsvae.evaluation.protocols`: the protocols (generation metrics, label accuracy,
  leakage probes, reconstruction, inpainting with the paper's masks, swaps, attribute transfer
  tables, code probes) and the reports composed of them: :func:`evaluate_model` (paper A
  Tables 1–2: every metric a model supports, chosen by the capabilities its class declares,
  :mod:`keras_lsvae.models.capabilities`), :func:`disentanglement_report` (the Lr-LiVAE
  suites), :func:`unseen_swap_report` (§3.6).
* :mod:`~keras_lsvae.evaluation.runs`: the one loader of ``model.keras`` (:func:`load_model`),
  training workdirs (:func:`read_run`) and :func:`evaluate_workdirs`, what ``scripts/evaluate.py``
  runs (mean ± sample std over the seeds of each model, ``evaluation.json`` and
  ``evaluation.md``).
"""

from keras_lsvae.evaluation import classifiers, protocols, runs  # noqa: F401
from keras_lsvae.evaluation.classifiers import (  # noqa: F401
    DEFAULT_WIDTH,
    ENV_CLASSIFIER_DIR,
    EvalClassifier,
    EvalData,
    blur,
    blur_robust_classifier,
    classifier_key,
    default_classifier_dir,
    default_classifier_epochs,
    fresh_classifier,
    get_eval_classifier,
    load_eval_data,
    resolve_backbone,
    versions,
)
from keras_lsvae.evaluation.protocols import (  # noqa: F401
    INPAINT_EXAMPLES,
    LOWER_IS_BETTER,
    METRIC_HELP,
    METRICS_ORDER,
    PAPER_MASKS,
    SAMPLES_PER_CLASS,
    attribute_code_probes,
    check_shapes,
    code_leakage,
    disentanglement_report,
    encoded,
    evaluate_model,
    factor_r2,
    generation_report,
    inpainting_mse,
    inpainting_report,
    label_accuracy,
    masked_errors,
    model_name,
    one_hot,
    reconstruction_mse,
    reference_numbers,
    swap_consistency,
    swap_partners,
    transfer_pairs,
    transfer_report,
    unseen_swap_report,
)
from keras_lsvae.evaluation.runs import (  # noqa: F401
    MODEL_FILE,
    aggregate,
    define_flags,
    evaluate_workdirs,
    jsonable,
    load_model,
    load_workdir_model,
    markdown_report,
    markdown_table,
    read_run,
    run_from_flags,
)
