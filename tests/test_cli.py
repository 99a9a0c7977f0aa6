"""keras_lsvae.cli.run_or_exit: the scripts' one-line user errors (scripts run as typed in
tests/test_benchmarks.py, test_configs.py, test_export.py, test_training_attributes.py)."""

import pytest

from keras_lsvae.cli import run_or_exit


def _raise(error):
    raise error


@pytest.mark.parametrize("error,line", [
    (ValueError("--x: bad"), "error: --x: bad\n"),
    (FileNotFoundError("no data file at 'a.npz'; pass --data=PATH"),
     "error: no data file at 'a.npz'; pass --data=PATH\n"),
    (KeyError("unknown model 'nope'"), "error: unknown model 'nope'\n"),  # not its repr
])
def test_user_errors_are_one_line_and_exit_code_2(error, line, capsys):
    with pytest.raises(SystemExit) as exit_:
        run_or_exit(_raise, error)
    assert exit_.value.code == 2
    assert capsys.readouterr().err == line


def test_other_errors_propagate_and_results_return(monkeypatch):
    with pytest.raises(ZeroDivisionError):  # a bug: keep the traceback
        run_or_exit(_raise, ZeroDivisionError("a bug"))
    monkeypatch.setenv("KERAS_LSVAE_TRACEBACK", "1")  # a developer asks for every traceback
    with pytest.raises(RuntimeError):
        run_or_exit(_raise, RuntimeError("corrupt file"))
    with pytest.raises(ValueError):  # only the errors asked for are the user's
        run_or_exit(_raise, ValueError("x"), errors=(FileNotFoundError,))
    assert run_or_exit(lambda a, b=0: a + b, 1, b=2) == 3
