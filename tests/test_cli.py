"""The command line: stages run by hand, user errors end in one clear line and exit code 1."""

from __future__ import annotations

import json

from globalmin.cli import main


def test_prepare_by_hand(tmp_path, capsys):
    assert main(["prepare", "--dataset", "digits", "--options", '{"test_size": 300}', "--out", str(tmp_path / "d.pt")]) == 0
    assert json.loads(capsys.readouterr().out)["n_train"] == 1497


def test_user_error_is_one_line_without_traceback(tmp_path, caplog):
    assert main(["prepare", "--dataset", "nope", "--out", str(tmp_path / "d.pt")]) == 1
    assert "unknown data set 'nope'" in caplog.text and "Traceback" not in caplog.text
    assert not (tmp_path / "d.pt").exists()


def test_missing_data_file_names_the_fix(tmp_path, caplog):
    code = main(["train-base", "--data", str(tmp_path / "missing.pt"), "--out-dir", str(tmp_path / "o"), "--seed", "0",
                 "--augment", "noaug", "--model", "{}", "--train", '{"device": "cpu"}', "--tau-fraction", "0.5"])
    assert code == 1 and "does not exist; build it with `snakemake" in caplog.text
