"""Tests of checkpoints: round trip, last/best, atomicity under crashes, config checks."""

from __future__ import annotations

import os

import numpy as np
import pytest
from gpuspike.engine.training import checkpoint as C
from gpuspike.engine.training.checkpoint import (
    CheckpointError,
    check_config,
    load_checkpoint,
    save_checkpoint,
)


def _save(d, epoch: int, acc: float, **kw):
    model = {"w": np.full((2, 3), float(epoch)), "in->hidden.d": np.arange(3) + epoch}
    opt = {"kind": "adam", "lr": 0.1, "t": epoch, "m": {"w": np.ones((2, 3)) * epoch}}
    history = [{"epoch": e, "val_acc": acc if e == epoch else 0.0} for e in range(epoch + 1)]
    kw.setdefault("monitor", "val_acc")
    return save_checkpoint(d, epoch, model, opt, history, {"global_batch": 10 * epoch}, **kw)


def test_round_trip(tmp_path) -> None:
    cfg = {"n_hidden": 4, "layers": (2, 3), "data": {"name": "shd"}}
    _save(tmp_path, 2, 0.5, config=cfg, schedule_state={"scale": 0.5})
    ck = load_checkpoint(tmp_path)
    assert ck.epoch == 2 and ck.which == "last" and ck.value == 0.5
    np.testing.assert_array_equal(ck.model_state["w"], np.full((2, 3), 2.0))
    np.testing.assert_array_equal(ck.model_state["in->hidden.d"], np.arange(3) + 2)
    np.testing.assert_array_equal(ck.optimiser_state["m"]["w"], np.full((2, 3), 2.0))
    assert ck.optimiser_state["kind"] == "adam" and ck.optimiser_state["t"] == 2
    assert ck.history[-1] == {"epoch": 2, "val_acc": 0.5}
    assert ck.extra == {"global_batch": 20}
    assert ck.config == {"n_hidden": 4, "layers": [2, 3], "data": {"name": "shd"}}
    assert ck.schedule_state == {"scale": 0.5}


def test_none_without_checkpoint(tmp_path) -> None:
    assert load_checkpoint(tmp_path) is None
    assert load_checkpoint(tmp_path / "missing") is None


def test_last_and_best_and_cleanup(tmp_path) -> None:
    for epoch, acc in enumerate([0.5, 0.7, 0.6]):
        _save(tmp_path, epoch, acc)
    assert load_checkpoint(tmp_path).epoch == 2
    best = load_checkpoint(tmp_path, which="best")
    assert best.epoch == 1 and best.value == 0.7
    np.testing.assert_array_equal(best.model_state["w"], np.full((2, 3), 1.0))
    npz = sorted(p.name for p in tmp_path.glob("*.npz"))
    assert len(npz) == 2  # only the files of last and best remain
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]
    _save(tmp_path, 3, 0.4, monitor="val_acc", mode="min")  # mode min: 0.4 < 0.7
    assert load_checkpoint(tmp_path, which="best").epoch == 3


def _crash_on(monkeypatch, target_name: str) -> None:
    real = os.replace

    def replace(src, dst):
        if os.path.basename(dst) == target_name or (
            target_name == "*.npz" and str(dst).endswith(".npz")
        ):
            raise OSError("simulated crash")
        return real(src, dst)

    monkeypatch.setattr(C.os, "replace", replace)


@pytest.mark.parametrize("where", ["*.npz", "last.json", "savez"])
def test_crash_while_saving_keeps_the_old_checkpoint(tmp_path, monkeypatch, where) -> None:
    _save(tmp_path, 0, 0.5)
    before = sorted(p.name for p in tmp_path.iterdir())
    if where == "savez":

        def savez(file, **arrays):
            file.write(b"PK\x03\x04 half an archive")
            raise OSError("simulated crash")

        monkeypatch.setattr(C.np, "savez", savez)
    else:
        _crash_on(monkeypatch, where)
    with pytest.raises(OSError, match="simulated"):
        _save(tmp_path, 1, 0.9)
    monkeypatch.undo()
    ck = load_checkpoint(tmp_path)
    assert ck.epoch == 0
    np.testing.assert_array_equal(ck.model_state["w"], np.zeros((2, 3)))
    after = sorted(p.name for p in tmp_path.iterdir())
    assert not [n for n in after if n.startswith(".tmp")]  # no temp file left
    if where != "last.json":
        assert after == before
    _save(tmp_path, 1, 0.9)  # the next save works and cleans up
    assert load_checkpoint(tmp_path).epoch == 1
    # epoch 1 (last, best) and epoch 0 (prev, kept until the next commit)
    assert len(list(tmp_path.glob("*.npz"))) == 2


def test_crash_between_last_and_best(tmp_path, monkeypatch) -> None:
    _save(tmp_path, 0, 0.5)
    _crash_on(monkeypatch, "best.json")
    with pytest.raises(OSError):
        _save(tmp_path, 1, 0.9)
    monkeypatch.undo()
    assert load_checkpoint(tmp_path).epoch == 1  # last was committed
    assert load_checkpoint(tmp_path, which="best").epoch == 0  # the old best is intact


def test_corrupt_files_fall_back_then_stop_with_an_error(tmp_path, caplog) -> None:
    """A damaged newest checkpoint: resume from the newest that verifies, saying which
    file failed and why; none verifies: an error, never a silent restart."""
    _save(tmp_path, 0, 0.9)
    _save(tmp_path, 1, 0.1)
    doc = C.json.loads((tmp_path / "last.json").read_text())
    npz = tmp_path / doc["npz"]
    npz.write_bytes(npz.read_bytes()[:50])  # truncated array file
    log = C.logging.getLogger("gpuspike")
    log.propagate = True
    try:
        with caplog.at_level("WARNING", logger="gpuspike"):
            ck = load_checkpoint(tmp_path)
    finally:
        log.propagate = False
    assert ck.epoch == 0 and ck.which in ("prev", "best")
    assert any("last.json" in r.getMessage() and "SHA-256" in r.getMessage()
               for r in caplog.records)
    (tmp_path / "last.json").write_text('{"format": 1, "epo')  # truncated json
    assert load_checkpoint(tmp_path).epoch == 0
    (tmp_path / "best.json").write_text("garbage")
    (tmp_path / "prev.json").write_text("garbage")
    with pytest.raises(C.CheckpointError, match="no checkpoint in .* verifies"):
        load_checkpoint(tmp_path)


def test_one_flipped_byte_resumes_from_the_previous_epoch(tmp_path) -> None:
    """One byte flipped in the newest .npz (the issue's case): the previous epoch's
    checkpoint, kept as prev.json, is resumed, not epoch 0 and not a fresh start."""
    for epoch, acc in enumerate([0.9, 0.5, 0.6]):  # best stays at epoch 0
        _save(tmp_path, epoch, acc)
    doc = C.json.loads((tmp_path / "last.json").read_text())
    npz = tmp_path / doc["npz"]
    data = bytearray(npz.read_bytes())
    data[len(data) // 2] ^= 0x01
    npz.write_bytes(bytes(data))
    ck = load_checkpoint(tmp_path)
    assert ck.epoch == 1 and ck.which == "prev"
    np.testing.assert_array_equal(ck.model_state["w"], np.full((2, 3), 1.0))


def test_config_check(tmp_path) -> None:
    saved = {"net": {"n_hidden": 256, "tau": 0.02}, "dataset": "shd", "epochs": 10}
    _save(tmp_path, 0, 0.5, config=saved)
    cur = {"net": {"n_hidden": 256, "tau": 0.02}, "dataset": "shd", "epochs": 50}
    with pytest.raises(CheckpointError, match="epochs: saved 10, now 50"):
        load_checkpoint(tmp_path, config=cur)
    keys = ["net.n_hidden", "dataset"]
    assert load_checkpoint(tmp_path, config=cur, config_keys=keys).epoch == 0
    cur["net"]["n_hidden"] = 512
    with pytest.raises(CheckpointError, match=r"net\.n_hidden: saved 256, now 512.*resume=False"):
        load_checkpoint(tmp_path, config=cur, config_keys=keys)
    check_config({"shape": (1, 2)}, {"shape": [1, 2]})  # equal after a JSON round trip
    with pytest.raises(CheckpointError, match="<missing>"):
        check_config({}, {"dataset": "shd"}, ["dataset"])
