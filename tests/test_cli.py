"""The command line: stages run by hand, help on every option, user errors end in one clear line and exit 1."""

from __future__ import annotations

import json

import pytest

from globalmin.cli import COMMANDS, build_parser, main


def test_prepare_by_hand(tmp_path, capsys):
    assert main(["prepare", "--dataset", "digits", "--options", '{"test_size": 300}', "--out", str(tmp_path / "d.pt")]) == 0
    assert json.loads(capsys.readouterr().out)["n_train"] == 1497


def test_user_error_is_one_line_without_traceback(tmp_path, caplog):
    assert main(["fetch", "--dataset", "digits", "--out", str(tmp_path / "raw")]) == 1
    assert "digits ships with its Python package" in caplog.text and "Traceback" not in caplog.text
    assert not (tmp_path / "raw").exists()


def test_missing_data_file_names_the_fix(tmp_path, caplog):
    code = main(["train-base", "--data", str(tmp_path / "missing.pt"), "--out-dir", str(tmp_path / "o"), "--seed", "0",
                 "--augment", "noaug", "--config", json.dumps({"model": {}, "train": {"device": "cpu"},
                                                                "tau_fraction": 0.5})])
    assert code == 1 and "does not exist; build it with `snakemake" in caplog.text


def test_unknown_data_set_is_refused_with_the_choices(capsys):
    with pytest.raises(SystemExit):
        main(["prepare", "--dataset", "nope", "--out", "x.pt"])
    assert "invalid choice: 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_and_option_has_help(command, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    text = capsys.readouterr().out
    assert COMMANDS[command].help.split()[0] in text
    for option in COMMANDS[command].options:
        assert option.help and option.flag in text


def test_every_command_runs_a_module_with_its_entry_point():
    import importlib
    import inspect

    for name, command in COMMANDS.items():
        entry = getattr(importlib.import_module(command.module), command.entry)
        assert list(inspect.signature(entry).parameters) == ["cfg", "inputs", "outputs"], name
