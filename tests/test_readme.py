"""The README's commands and code as written: every train.py command parses to a valid run,
every script and config it names exists, and the Python API example runs (fewer epochs)."""

import os
import re
import shlex

import numpy as np
import pytest

from keras_lsvae.training.flags import config_from_flags, flagfile_of, parse_argv

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
with open(os.path.join(REPO, "README.md")) as _f:
    README = _f.read()


def _commands():
    """Every `python scripts/...` command in the README (continuation lines joined)."""
    text = README.replace("\\\n", " ")
    found = []
    for match in re.finditer(r"python (scripts/\w+\.py[^`\n&|#]*)", text):
        argv = shlex.split(match.group(1))
        if argv not in found:
            found.append(argv)
    return found


COMMANDS = _commands()


def test_readme_names_the_main_commands():
    scripts = {argv[0] for argv in COMMANDS}
    assert {"scripts/train.py", "scripts/benchmark.py", "scripts/visualize.py"} <= scripts
    assert ["scripts/train.py", "--flagfile=configs/digits.cfg"] in COMMANDS


@pytest.mark.parametrize("argv", COMMANDS, ids=[" ".join(a) for a in COMMANDS])
def test_readme_command_names_existing_files_and_valid_flags(argv, monkeypatch):
    monkeypatch.chdir(REPO)
    assert os.path.exists(argv[0]), argv[0]
    for arg in argv[1:]:
        if arg.startswith("--flagfile="):
            assert os.path.exists(arg.split("=", 1)[1]), arg
    if argv[0] == "scripts/train.py":
        values = parse_argv(argv)
        config = config_from_flags(values, flagfile_of(argv[1:]))
        assert config.workdir


def test_readme_python_example_runs():
    block = re.search(r"## Python API\n\n```python\n(.*?)```", README, re.S).group(1)
    assert "model.fit(ds, epochs=10)" in block
    namespace = {}
    exec(block.replace("epochs=10", "epochs=1"), namespace)  # noqa: S102 - the README's code
    assert namespace["model"].num_classes == 10 and namespace["x"].shape[1:] == (16, 16, 1)


def test_readme_csvae_example_runs():
    block = re.search(r"### Paper B in Python \(CSVAE\)\n\n```python\n(.*?)```", README,
                      re.S).group(1)
    assert "csvae.fit(x, attributes, batch_size=64, epochs=10)" in block
    namespace = {}
    exec(block.replace("epochs=10", "epochs=1"), namespace)  # noqa: S102 - the README's code
    assert namespace["csvae"].num_attributes == 10 and namespace["grid"].shape == (25, 2)


def test_readme_paper_a_baseline_example_runs(tmp_path, monkeypatch):
    """The baselines' README block as written (1 epoch; the evaluation classifier trained for 1
    epoch into a temporary cache instead of the user's)."""
    from keras_lsvae import evaluation

    monkeypatch.setenv("KERAS_LSVAE_CLASSIFIER_DIR", str(tmp_path))
    monkeypatch.setattr(evaluation, "default_classifier_epochs", lambda num_train: 1)
    block = re.search(r"### Paper A's baselines and their evaluation in Python\n\n```python\n"
                      r"(.*?)```", README, re.S).group(1)
    assert "cvae.fit(x, y, batch_size=64, epochs=10)" in block
    namespace = {}
    exec(block.replace("epochs=10", "epochs=1"), namespace)  # noqa: S102 - the README's code
    scores = namespace["scores"]
    for key in ("is_mean", "fid", "diversity", "conditional_accuracy", "recon_mse"):
        assert np.isfinite(scores[key]), key
    assert 1.0 <= scores["is_mean"] <= 10.0  # IS lies in [1, K]
    assert any(name.endswith(".keras") for name in os.listdir(tmp_path))  # cached there
