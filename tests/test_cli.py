"""The command line's errors: one line ``gpuspike: error: ...`` and exit status 2 for what
the user gave (missing or malformed files, values it cannot use); ``--debug`` shows the
traceback."""

from __future__ import annotations

import subprocess
import sys


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gpuspike.cli", *args], capture_output=True,
                          text=True, timeout=300)


def test_missing_file_is_one_line_and_status_2(tmp_path):
    missing = str(tmp_path / "none.h5")
    r = _cli("train", "--dataset", "shd", "--train", missing, "--test", missing,
             "--epochs", "1")
    assert r.returncode == 2
    lines = [x for x in r.stderr.splitlines() if x.startswith("gpuspike: error:")]
    assert len(lines) == 1 and missing in lines[0] and "Traceback" not in r.stderr


def test_malformed_file_and_bad_value(tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_text("not an h5 file")
    r = _cli("train", "--dataset", "shd", "--train", str(bad), "--test", str(bad))
    assert r.returncode == 2 and "not an h5 file" in r.stderr and "Traceback" not in r.stderr
    r = _cli("train", "--dataset", "mnist5k", "--epochs", "1", "--hidden", "-5")
    assert r.returncode == 2 and "gpuspike: error:" in r.stderr
    assert "Traceback" not in r.stderr


def test_debug_shows_the_traceback(tmp_path):
    missing = str(tmp_path / "none.h5")
    for argv in (("--debug", "train"), ("train", "--debug")):
        r = _cli(*argv, "--dataset", "shd", "--train", missing, "--test", missing)
        assert r.returncode == 1 and "Traceback" in r.stderr and "DatasetError" in r.stderr


def test_unknown_engine_is_argparse_status_2():
    r = _cli("info", "--engine", "tpu")
    assert r.returncode == 2 and "invalid choice" in r.stderr
