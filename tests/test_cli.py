"""The command line: stages run by hand, help on every option, user errors end in one clear line and exit 1."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import TINY_MODEL, TINY_TRAIN, base_settings
from globalmin.cli import COMMANDS, build_parser, main


def test_prepare_by_hand(tmp_path, capsys):
    options = '{"test_size": 300}'
    assert main(["prepare", "--dataset", "digits", "--options", options, "--out", str(tmp_path / "d.pt")]) == 0
    assert json.loads(capsys.readouterr().out)["n_train"] == 1497


def test_console_script_leaves_its_outputs_streams_and_exit_code_whole(tmp_path):
    # through the console entry: what a stage wrote, logged and printed must all be there, with its exit code
    out = tmp_path / "d.pt"
    done = subprocess.run([sys.executable, "-m", "globalmin", "prepare", "--dataset", "digits", "--options",
                           '{"test_size": 300}', "--out", str(out)], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and json.loads(done.stdout)["n_train"] == 1497
    assert out.stat().st_size > 0 and main(["prepare", "--dataset", "digits", "--options", '{"test_size": 300}',
                                            "--out", str(tmp_path / "again.pt")]) == 0
    assert out.read_bytes() == (tmp_path / "again.pt").read_bytes()
    failed = subprocess.run([sys.executable, "-m", "globalmin", "fetch", "--dataset", "digits", "--out",
                             str(tmp_path / "raw")], capture_output=True, text=True, check=False)
    assert failed.returncode == 1 and "digits ships with its Python package" in failed.stderr
    crashed = subprocess.run([sys.executable, "-m", "globalmin", "report", "--help-me"], capture_output=True, text=True,
                             check=False)
    assert crashed.returncode == 2 and "arguments are required" in crashed.stderr  # argparse exits as before


def test_user_error_is_one_line_without_traceback(tmp_path, caplog):
    assert main(["fetch", "--dataset", "digits", "--out", str(tmp_path / "raw")]) == 1
    assert "digits ships with its Python package" in caplog.text and "Traceback" not in caplog.text
    assert not (tmp_path / "raw").exists()


def test_missing_data_file_names_the_fix(tmp_path, caplog):
    code = main(["train-base", "--data", str(tmp_path / "missing.pt"), "--out-dir", str(tmp_path / "o"), "--seed", "0",
                 "--augment", "noaug", "--config", json.dumps(base_settings(TINY_MODEL, TINY_TRAIN, 0.5))])
    assert code == 1 and "does not exist; build it with `snakemake" in caplog.text


def test_unknown_data_set_is_refused_with_the_choices(capsys, caplog):
    assert main(["prepare", "--dataset", "nope", "--out", "x.pt"]) == 1
    assert "unknown data set 'nope'" in caplog.text and "digits" in caplog.text and "source: folder" in caplog.text
    with pytest.raises(SystemExit):  # not a name the workflow's wildcards can hold
        main(["prepare", "--dataset", "No-Pe", "--out", "x.pt"])
    assert "lower-case letters, digits and _" in capsys.readouterr().err


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
