"""``gpuspike train`` end to end on small SHD-format files made here."""

from __future__ import annotations

import json

import numpy as np
import pytest
from gpuspike.bridge.errors import ModelError, UnsupportedFeature

from gpuspike.cli import main
from gpuspike.datasets.events import SpikeDataset
from gpuspike.datasets.shd import write_shd
from gpuspike.training_cli import RULES, resolve_config, run_training


def two_class_file(path, n=40, seed=0, channels=24):
    """Class 0 fires channels 0-7 early, class 1 channels 12-19 late (noisy, jittered)."""
    rng = np.random.default_rng(seed)
    times, units, labels = [], [], []
    for k in range(n):
        c = k % 2
        base = np.arange(8) + (12 if c else 0)
        t = (0.01 if c == 0 else 0.05) + rng.uniform(0, 0.02, 8)
        noise_u = rng.integers(0, channels, 4)
        noise_t = rng.uniform(0, 0.08, 4)
        order = np.argsort(np.r_[t, noise_t])
        times.append(np.r_[t, noise_t][order])
        units.append(np.r_[base, noise_u][order])
        labels.append(c)
    ds = SpikeDataset(times, units, np.array(labels), np.zeros(n, int) + np.arange(n) % 3,
                      channels, keys=["zero", "one"])
    write_shd(path, ds)
    return path


@pytest.fixture
def files(tmp_path):
    return (two_class_file(tmp_path / "train.h5", 60, 0),
            two_class_file(tmp_path / "test.h5", 20, 1))


SMALL = dict(dataset="shd", hidden=12, recurrent=True, dt=2e-3, duration=0.1, epochs=6,
             batch_size=8, lr=2e-2, progress=False, dtype="float64", init_in=(0.6, 0.3),
             init_out=(0.0, 0.3), lift=0.0, reg=0.0)


def test_trains_a_separable_shd_format_problem(files):
    train, test = files
    r = run_training(dict(SMALL, train=str(train), test=str(test)))
    for key in ("train_acc", "test_acc", "epochs", "epoch_time_s", "peak_mem_mib", "device"):
        assert key in r
    assert r["epochs"] == 6
    assert r["test_acc"] >= 0.9
    assert r["spikes_per_neuron"]["hidden"] > 0


def test_cli_prints_one_json_line_and_resumes(files, tmp_path, capsys):
    train, test = files
    args = ["train", "--dataset", "shd", "--train", str(train), "--test", str(test),
            "--hidden", "8", "--dt", "0.002", "--duration", "0.1", "--batch-size", "16",
            "--no-progress", "--checkpoint", str(tmp_path / "ck"), "--seed", "3"]
    assert main([*args, "--epochs", "1"]) == 0
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert first["epochs"] == 1
    assert main([*args, "--epochs", "2", "--resume"]) == 0
    second = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert second["epochs"] == 2
    assert second["config"]["seed"] == 3
    # another synapse than the checkpoint's is refused, naming it (never a silent change)
    from gpuspike.engine.training.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="tau_s: saved 0.04, now 0.005"):
        main([*args, "--epochs", "3", "--resume", "--tau-s", "0.005", "--debug"])


def test_loso_speaker_holds_that_speaker_out(files):
    train, _ = files
    r = run_training(dict(SMALL, train=str(train), loso_speaker=2, epochs=1))
    assert r["epochs"] == 1
    with pytest.raises(ModelError, match="--loso-speaker 7: no such speaker"):
        run_training(dict(SMALL, train=str(train), loso_speaker=7))


def test_defaults_and_errors():
    cfg = resolve_config({"dataset": "mnist5k", "epochs": None})
    assert (cfg["hidden"], cfg["lr"], cfg["duration"], cfg["loss"]) == (128, 1e-2, 20e-3,
                                                                        "avg_ce")
    assert resolve_config({"dataset": "shd"})["recurrent"] is True
    with pytest.raises(ModelError, match="unknown dataset"):
        resolve_config({"dataset": "cifar"})
    with pytest.raises(ModelError, match="--train"):
        run_training({"dataset": "shd"})


def test_validation_split_early_stopping_and_ease_in(files):
    train, test = files
    r = run_training(dict(SMALL, train=str(train), test=str(test), val_fraction=0.25,
                          early_stopping=2, ease_in=True, epochs=4))
    assert r["val_acc"] is not None
    assert 1 <= r["epochs"] <= 4
    assert r["best_epoch"] is not None


def test_validation_speaker_is_held_out_and_its_best_epoch_kept(files, monkeypatch):
    """``--val-speaker``: nested hold-out; the model of the best validation epoch is the
    one tested (the loop gets a patience, so it restores that epoch's parameters)."""
    import gpuspike.engine.training.loop as loop

    train, _ = files
    seen = {}
    real_fit = loop.fit

    def spy(model, loader, **kw):
        seen.update(n_train=len(loader.dataset), n_val=len(kw["val"].dataset),
                    patience=kw["early_stopping_patience"], monitor=kw["monitor"])
        return real_fit(model, loader, **kw)

    monkeypatch.setattr(loop, "fit", spy)
    r = run_training(dict(SMALL, train=str(train), loso_speaker=2, val_speaker=1, epochs=3))
    assert seen == dict(n_train=20, n_val=20, patience=3, monitor="val_acc")
    assert r["val_acc"] is not None and r["best_epoch"] is not None
    seen.clear()
    run_training(dict(SMALL, train=str(train), loso_speaker=2, val_speaker="next", epochs=1))
    assert (seen["n_train"], seen["n_val"]) == (20, 20)   # speaker 0 (after 2, cyclic)
    with pytest.raises(ModelError, match="--val-speaker next takes"):
        run_training(dict(SMALL, train=str(train), test=str(files[1]), val_speaker="next"))
    with pytest.raises(ModelError, match="--val-speaker 5: no such speaker"):
        run_training(dict(SMALL, train=str(train), loso_speaker=2, val_speaker=5))
    with pytest.raises(ModelError, match="give one"):
        run_training(dict(SMALL, train=str(train), loso_speaker=2, val_speaker=1,
                          val_fraction=0.2))


def test_input_dropout_and_jitter_augment_and_still_train(files):
    train, test = files
    r = run_training(dict(SMALL, train=str(train), test=str(test), augment_dropout=0.2,
                          augment_jitter=1))
    assert r["test_acc"] >= 0.9
    with pytest.raises(ModelError, match="augment_dropout is the probability"):
        run_training(dict(SMALL, train=str(train), test=str(test), augment_dropout=1.5))


def test_weight_decay_reaches_the_optimiser_and_still_trains(files, monkeypatch, capsys):
    import gpuspike.engine.training.loop as loop

    train, test = files
    seen = {}
    real_fit = loop.fit

    def spy(model, loader, **kw):
        seen["wd"] = kw["optimiser"].weight_decay
        return real_fit(model, loader, **kw)

    monkeypatch.setattr(loop, "fit", spy)
    r = run_training(dict(SMALL, train=str(train), test=str(test), weight_decay=0.5))
    assert seen["wd"] == 0.5 and r["test_acc"] >= 0.9
    assert main(["train", "--dataset", "shd", "--train", str(train), "--test", str(test),
                 "--hidden", "8", "--dt", "0.002", "--duration", "0.1", "--epochs", "1",
                 "--no-progress", "--weight-decay", "0.25"]) == 0
    assert seen["wd"] == 0.25
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["config"]["weight_decay"] == 0.25


def test_time_constants_reach_the_network(files, monkeypatch):
    import gpuspike.engine.rules.network as network

    train, test = files
    seen = {}
    real = network.make_network

    def spy(rule, ir, params, **kw):
        seen.update({p.name: (p.neuron.tau_m, p.neuron.tau_s) for p in ir.populations
                     if p.neuron is not None})
        return real(rule, ir, params, **kw)

    monkeypatch.setattr(network, "make_network", spy)
    r = run_training(dict(SMALL, train=str(train), test=str(test), tau_m=40e-3, tau_s=8e-3))
    assert seen["hidden"] == seen["out"] == (40e-3, 8e-3) and r["test_acc"] >= 0.9
    with pytest.raises(ModelError, match="must be positive"):
        run_training(dict(SMALL, train=str(train), test=str(test), tau_m=-1.0))


def test_normalise_span_warps_train_and_test_and_sets_the_trial(files, monkeypatch):
    train, test = files
    calls = []
    real = SpikeDataset.normalise_span

    def spy(self, span, quantile=0.05, margin=0.01):
        calls.append((len(self), span, quantile))
        return real(self, span, quantile, margin)

    monkeypatch.setattr(SpikeDataset, "normalise_span", spy)
    r = run_training(dict(SMALL, train=str(train), test=str(test), normalise_span=0.06,
                          align_onset=0.1, duration=None))
    assert calls == [(60, 0.06, 0.1), (20, 0.06, 0.1)]
    # the file rule reads the warped spikes (the raw ones all end before 80 ms)
    from gpuspike.datasets.shd import read_shd
    from gpuspike.training_cli import data_recipe

    warped = real(read_shd(train), 0.06, 0.1)
    assert r["config"]["duration"] == data_recipe(warped, dt=2e-3)["duration"] > 0.1


def test_pooled_channels_still_separate_the_classes(files, tmp_path):
    # pooling by 4 keeps the two classes' channel groups (0-7, 12-19) apart: 0-1 vs 3-4
    train, test = files
    r = run_training(dict(SMALL, train=str(train), test=str(test), pool_channels=4,
                          init_in=(1.2, 0.6), checkpoint=str(tmp_path / "ck")))
    assert r["test_acc"] >= 0.9
    state = json.loads((tmp_path / "ck" / "last.json").read_text())
    assert state["config"]["pool_channels"] == 4
    assert len(state["model_state"]) == 3
    from gpuspike.engine.training.checkpoint import load_checkpoint

    ckpt = load_checkpoint(tmp_path / "ck")
    assert ckpt.model_state["in->hidden.w"].shape == (12, 6)


def test_blends_are_same_class_drawn_once_from_the_training_part(files):
    """with_blends appends n same-class blends, identical for a seed (so a resumed run sees
    the same set); run_training with blends and a validation split still separates the
    classes."""
    from gpuspike.datasets.shd import read_shd
    from gpuspike.training_cli import with_blends

    train, test = files
    ds = read_shd(train)
    a, b = with_blends(ds, 30, 4, 0.1), with_blends(ds, 30, 4, 0.1)
    assert len(a.labels) == len(ds.labels) + 30
    extra = slice(len(ds.labels), None)
    assert all(np.array_equal(x, y) for x, y in zip(a.times[extra], b.times[extra]))
    assert not all(np.array_equal(x, y) for x, y in
                   zip(a.times[extra], with_blends(ds, 30, 5, 0.1).times[extra]))
    for t, u, c in zip(a.times[extra], a.units[extra], a.labels[extra]):
        # class 0 lives on channels 0-7 early, class 1 on 12-19 late: a blend of two
        # same-class samples keeps most of its events in that class's band
        band = (u >= 12) & (u < 20) if c == 1 else (u < 8)
        assert band.mean() >= 0.5 and np.all(t < 0.1)
    r = run_training(dict(SMALL, train=str(train), test=str(test), augment_blend=40,
                          val_fraction=0.25))
    assert r["test_acc"] >= 0.9
    assert r["config"]["augment_blend"] == 40


def test_time_scale_and_shift_compose_and_bad_factor_is_named(files, monkeypatch):
    """Both augmentations on: every training example of every epoch goes through the shift
    and then the time scaling with factors in [0.9, 1.1]; the classes still separate; a
    factor outside (0, 1) is refused with the option's name."""
    import gpuspike.datasets.augment as augment

    calls = []
    real_scale, real_shift = augment.time_scale, augment.channel_shift

    def scale(times, units, rng, **kw):
        calls.append(("scale", kw["low"], kw["high"]))
        return real_scale(times, units, rng, **kw)

    def shift(times, units, rng, **kw):
        calls.append(("shift", kw["max_shift"]))
        return real_shift(times, units, rng, **kw)

    monkeypatch.setattr(augment, "time_scale", scale)
    monkeypatch.setattr(augment, "channel_shift", shift)
    train, test = files
    r = run_training(dict(SMALL, train=str(train), test=str(test), augment_shift=1,
                          augment_time_scale=0.1))
    assert r["test_acc"] >= 0.9
    assert calls[:2] == [("shift", 1), ("scale", 0.9, 1.1)]
    assert len(calls) == 2 * 60 * SMALL["epochs"]
    with pytest.raises(ModelError, match="augment_time_scale"):
        run_training(dict(SMALL, train=str(train), test=str(test), augment_time_scale=1.5))


def test_a_misspelt_option_is_an_error_naming_the_likely_one(files):
    train, test = files
    with pytest.raises(ModelError, match=r"'augment_shfit' \(did you mean 'augment_shift'\?\)"):
        run_training(dict(SMALL, train=str(train), test=str(test), augment_shfit=2))


def _lengths_file(path, lengths, channels):
    rng = np.random.default_rng(0)
    times = [np.sort(rng.uniform(0, L, 30)).astype(np.float32) for L in lengths]
    for t, L in zip(times, lengths):
        t[-1] = L  # the last spike at the sample's length
    units = [rng.integers(0, channels, 30) for _ in lengths]
    ds = SpikeDataset(times, units, np.arange(len(lengths)) % 2, np.zeros(len(lengths), int),
                      channels)
    write_shd(path, ds)
    return path


@pytest.mark.parametrize("length, channels, dt, pool", [
    (0.1, 256, 1e-3, 1), (0.5, 700, 2e-3, 3), (1.4, 300, 5e-3, 2), (3.0, 64, 5e-3, 1)])
def test_the_file_rule_picks_dt_duration_and_pooling(tmp_path, length, channels, dt, pool):
    from gpuspike.datasets.shd import read_shd
    from gpuspike.training_cli import data_recipe

    lengths = np.full(200, length)
    lengths[0] = 10 * length  # an outlier beyond the 99th percentile is cut
    ds = read_shd(_lengths_file(tmp_path / "x.h5", lengths, channels))
    r = data_recipe(ds)
    assert r["dt"] == dt and r["pool_channels"] == pool
    assert r["duration"] == pytest.approx(np.ceil(round(length / dt, 4)) * dt)
    # what the user gives is kept
    assert data_recipe(ds, dt=1e-3, duration=2.0, pool_channels=1) == {
        "dt": 1e-3, "duration": 2.0, "pool_channels": 1}


def test_bare_shd_run_uses_the_rule_the_calibration_and_the_guard(files):
    train, test = files
    r = run_training(dict(dataset="shd", train=str(train), test=str(test), hidden=12,
                          epochs=1, progress=False, dtype="float64", reg_nu=3.0))
    cfg = r["config"]
    # two_class_file: 24 channels, last spikes below 0.1 s -> dt 1 ms, no pooling
    assert cfg["dt"] == 1e-3 and cfg["pool_channels"] == 1 and cfg["duration"] <= 0.1
    (c,) = r["calibration"]
    assert c["population"] == "hidden" and abs(c["spikes_after"] - 3.0) <= 0.3
    assert r["runaways"] == 0 and r["runaway_events"] == []


@pytest.mark.parametrize("rule", ["bptt", "eprop"])
def test_rule_option_trains_with_that_rule(files, rule, capsys):
    """``--rule`` picks the gradient (the JSON says which) and trains the small problem."""
    train, test = files
    r = run_training(dict(SMALL, train=str(train), test=str(test), rule=rule,
                          loss="avg_ce", lr=2e-2))
    assert r["rule"] == rule and r["config"]["rule"] == rule
    assert r["test_acc"] >= 0.9
    assert main(["train", "--dataset", "shd", "--train", str(train), "--test", str(test),
                 "--hidden", "8", "--dt", "0.002", "--duration", "0.1", "--epochs", "1",
                 "--rule", rule, "--surrogate", "triangle", "--surrogate-scale", "0.5",
                 "--no-progress"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["rule"] == rule and line["config"]["surrogate"] == "triangle"


def test_rule_defaults_and_errors(files):
    train, test = files
    assert resolve_config({"dataset": "mnist5k", "rule": "bptt"})["loss"] == "max_ce"
    eprop = resolve_config({"dataset": "shd", "rule": "eprop"})
    assert eprop["reg_nu"] is None and eprop["lr"] == 1e-3   # 10 Hz over the trial
    assert (eprop["neuron"], eprop["theta"], eprop["tau_a"]) == ("alif", 0.6, 2.0)
    assert eprop["refractory"] == 5e-3   # mlGeNN's e-prop SHD recipe
    assert resolve_config({"dataset": "shd", "rule": "bptt"})["refractory"] == 0.0
    # the max readout overfitted a synthetic SHD-shaped set (RESULTS.md, issue 16)
    assert resolve_config({"dataset": "shd", "rule": "bptt"})["loss"] == "exp_avg_ce"
    # a 40 ms synapse on SHD-format files, every rule (RESULTS.md, issues 14 and 16)
    assert [resolve_config({"dataset": d, "rule": r})["tau_s"] for d, r in (
        ("shd", "eventprop"), ("shd", "bptt"), ("shd", "eprop"), ("mnist5k", "eventprop"),
        ("mnist5k", "eprop"))] == [40e-3, 40e-3, 40e-3, 5e-3, 5e-3]
    # EventProp's rate decays on SHD-format files (final vs best reads, RESULTS.md, issue 16)
    assert [resolve_config({"dataset": "shd", "rule": r})["lr_decay"] for r in RULES] == [
        0.98, 1.0, 1.0]
    assert resolve_config({"dataset": "shd", "rule": "eprop", "lr": 5e-3})["lr"] == 5e-3
    with pytest.raises(ModelError, match="unknown training rule"):
        resolve_config({"dataset": "mnist5k", "rule": "rtrl"})
    with pytest.raises(ModelError, match="--surrogate is an option of"):
        run_training(dict(SMALL, train=str(train), test=str(test), surrogate="triangle"))
    r = run_training(dict(SMALL, train=str(train), test=str(test), rule="eprop", epochs=1,
                          reg_nu=None, reg=1e-3, neuron="alif", tau_a=0.05))
    assert r["config"]["reg_nu"] == pytest.approx(10.0 * 0.1)
    assert r["config"]["refractory"] == 5e-3
    with pytest.raises(UnsupportedFeature, match="adaptive threshold"):
        run_training(dict(SMALL, train=str(train), test=str(test), neuron="alif"))
    with pytest.raises(UnsupportedFeature, match="without a refractory period"):
        run_training(dict(SMALL, train=str(train), test=str(test), refractory=2e-3))


def test_eprop_online_flag_trains_the_same_run(files):
    """``--eprop-online`` (forward-time traces) retraces the default run (reverse time):
    one gradient, so one history (float64, to rounding)."""
    train, test = files
    runs = [run_training(dict(SMALL, train=str(train), test=str(test), rule="eprop",
                              epochs=2, eprop_online=online)) for online in (False, True)]
    fast, online = runs
    assert fast["test_loss"] == pytest.approx(online["test_loss"], rel=1e-9)
    assert (fast["train_acc"], fast["test_acc"]) == (online["train_acc"], online["test_acc"])
    assert online["config"]["eprop_online"] and not fast["config"]["eprop_online"]
    with pytest.raises(UnsupportedFeature, match="online eligibility traces are e-prop's"):
        run_training(dict(SMALL, train=str(train), test=str(test), rule="bptt",
                          eprop_online=True))


@pytest.mark.parametrize("rule", ["bptt", "eprop"])
def test_bare_shd_run_calibrates_and_guards_every_rule(files, rule):
    """The data-driven start and the runaway guard are the rules' too (issue 16)."""
    train, test = files
    r = run_training(dict(dataset="shd", train=str(train), test=str(test), hidden=12,
                          epochs=1, progress=False, dtype="float64", reg_nu=3.0, rule=rule,
                          neuron="lif", theta=1.0, reg=1e-3))
    (c,) = r["calibration"]
    assert abs(c["spikes_after"] - 3.0) <= 0.3
    assert r["runaways"] == 0 and r["rule"] == rule
