"""Every bad input gets one clear error in the learner's terms: never a traceback from deep inside
torch, numpy, json or matplotlib, never a silently wrong result, never a damaged file (issue 7)."""
import json
import math
import os
import shutil
import threading
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch import nn

from deepgen_helpers import bench, checkpoints as ck, config, data, metrics, plotting, training
from deepgen_helpers.checks import Case, CheckResult, lesson00, lesson02, run_checks
from deepgen_helpers.classifier import accuracy, load_classifier

CLEAR = (ValueError, TypeError, FileNotFoundError, ck.CheckpointError, data.DataError)
X = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 2)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# --------------------------------------------------------------------------------------------------
# One table of bad inputs: each must raise a clear error type whose message names the problem
# --------------------------------------------------------------------------------------------------
BAD_INPUTS = {
    # config
    "seed beyond 2**64": (lambda: config.seed_everything(2**70), "2\\*\\*64"),
    "seed is a bool": (lambda: config.seed_everything(True), "whole number"),
    "seed is a float": (lambda: config.seed_everything(1.0), "whole number"),
    "device 'gpu'": (lambda: config.get_device("gpu"), "'cuda' is the NVIDIA GPU"),
    "device is an int": (lambda: config.get_device(5), "device must be a string"),
    # data
    "n larger than the split": (lambda: data.load_images("mnist", "test", n=20000), "only 10,000"),
    "n is True": (lambda: data.load_images("mnist", "test", n=True), "n must be a whole number"),
    "n is a float": (lambda: data.load_images("mnist", "test", n=2.5), "n must be a whole number"),
    "negative seed": (
        lambda: data.load_images("mnist", "test", n=5, seed=-1),
        "seed must be at least 0",
    ),
    "device 'gpu' in a loader": (
        lambda: data.load_mnist("test", n=5, device="gpu"),
        "device='gpu'",
    ),
    "dataset name in a list": (lambda: data.load_images(["mnist"]), "Unknown image dataset"),
    "dataset name in capitals": (lambda: data.load_images("MNIST"), "Did you mean 'mnist'"),
    "text name in a list": (lambda: data.load_text(["names"]), "Unknown text dataset"),
    "negative toy noise": (lambda: data.make_toy_2d("moons", noise=-1.0), "noise"),
    "NaN toy noise": (lambda: data.make_toy_2d("moons", noise=float("nan")), "noise"),
    "toy n as float": (lambda: data.make_toy_2d("moons", n=1e3), "n must be a whole number"),
    # metrics
    "class_entropy of a probability matrix": (
        lambda: metrics.class_entropy(torch.softmax(torch.randn(50, 10), 1)),
        "argmax",
    ),
    "class_entropy of fractional labels": (
        lambda: metrics.class_entropy(torch.tensor([0.5, 1.5])),
        "whole",
    ),
    "class_entropy of negative labels": (
        lambda: metrics.class_entropy(torch.tensor([-1, 2])),
        "0 to 9",
    ),
    "class_entropy of labels beyond n_classes": (
        lambda: metrics.class_entropy(torch.tensor([12])),
        "0 to 9",
    ),
    "fid on NaN images": (lambda: metrics.fid(torch.full((10, 1, 28, 28), float("nan")), X), "NaN"),
    "fid on an empty set": (lambda: metrics.fid(X[:0], X), "0 images"),
    "fid on one image": (lambda: metrics.fid(X[:1], X), "at least 2"),
    "fid on channels-last images": (
        lambda: metrics.fid(X.permute(0, 2, 3, 1), X),
        "permute\\(0, 3, 1, 2\\)",
    ),
    "fid on 0-255 images": (lambda: metrics.fid(X * 255, X), "divide by 255"),
    "fid on uint8 images": (lambda: metrics.fid((X * 255).byte(), X), "divide by 255"),
    "fid on [-1, 1] images": (lambda: metrics.fid(X * 2 - 1, X), "\\(x \\+ 1\\) / 2"),
    "fid with a misspelt dataset": (
        lambda: metrics.fid(X, X, dataset="mnsit"),
        "Did you mean 'mnist'",
    ),
    "fid on images of another size": (
        lambda: metrics.fid(torch.rand(3, 3, 32, 32), X),
        "\\(N, 1, 28, 28\\)",
    ),
    "predict with batch_size 0": (lambda: metrics.predict(X, batch_size=0), "batch_size"),
    "class_accuracy with probability labels": (
        lambda: metrics.class_accuracy(X, torch.rand(4, 10)),
        "argmax",
    ),
    "class_accuracy with too few labels": (
        lambda: metrics.class_accuracy(X, torch.arange(3)),
        "one per image",
    ),
    "fid_from_features on 1-D features": (
        lambda: metrics.fid_from_features(torch.randn(9), torch.randn(9)),
        "\\(N, F\\)",
    ),
    "fid_from_features on NaN features": (
        lambda: metrics.fid_from_features(torch.full((9, 3), float("nan")), torch.randn(9, 3)),
        "NaN",
    ),
    "frechet_distance of mismatched sizes": (
        lambda: metrics.frechet_distance(
            torch.zeros(2), torch.eye(2), torch.zeros(3), torch.eye(3)
        ),
        "one size F",
    ),
    "bits_per_dim with a shape for n_dims": (
        lambda: metrics.bits_per_dim(1.0, (1, 28, 28)),
        "n_dims",
    ),
    # classifier
    "accuracy with labels of another length": (
        lambda: accuracy(load_classifier("mnist"), X, torch.zeros(8, dtype=torch.long)),
        "one per image",
    ),
    "accuracy on no images": (
        lambda: accuracy(load_classifier("mnist"), X[:0], torch.zeros(0)),
        "0 images",
    ),
    "load_classifier on cuda without CUDA": (
        lambda: (
            load_classifier("mnist", device="cuda")
            if not torch.cuda.is_available()
            else config.get_device("gpu")
        ),
        "device=",
    ),
    # plotting
    "show_images of 0-255 images": (lambda: plotting.show_images(X * 255), "divide by 255"),
    "show_images of [-1, 1] images on [0, 1]": (
        lambda: plotting.show_images(X * 2 - 1),
        "vmin and vmax",
    ),
    "show_images of NaN images": (
        lambda: plotting.show_images(torch.full((2, 1, 4, 4), float("nan"))),
        "NaN",
    ),
    "show_images of channels-last images": (
        lambda: plotting.show_images(X.permute(0, 2, 3, 1)),
        "permute",
    ),
    "show_images of 5 channels": (
        lambda: plotting.show_images(torch.rand(2, 5, 8, 8)),
        "5 channels",
    ),
    "show_images with nrow 0": (lambda: plotting.show_images(X, nrow=0), "nrow"),
    "show_images of no images": (lambda: plotting.show_images(X[:0]), "0 images"),
    "show_images with vmin above vmax": (lambda: plotting.show_images(X, vmin=1, vmax=0), "vmin"),
    "show_images of a string": (lambda: plotting.show_images("x.png"), "torch.Tensor"),
    "show_images of a list of different shapes": (
        lambda: plotting.show_images([X[0], X[0, :, :5]]),
        "same shape",
    ),
    "plot_losses of a bare list": (lambda: plotting.plot_losses([3, 2, 1]), "dict of name"),
    "plot_losses of strings": (lambda: plotting.plot_losses({"loss": ["a"]}), "must be a number"),
    "plot_losses with smooth 2.5": (
        lambda: plotting.plot_losses({"loss": [1, 2]}, smooth=2.5),
        "smooth",
    ),
    "scatter_2d of NaN points": (
        lambda: plotting.scatter_2d(torch.full((5, 2), float("nan"))),
        "NaN",
    ),
    "scatter_2d with a negative lim": (
        lambda: plotting.scatter_2d(torch.zeros(3, 2), lim=-1),
        "lim",
    ),
    "density_2d whose log_prob keeps (M, 2)": (
        lambda: plotting.density_2d(lambda p: p, n=10),
        "\\(M,\\)",
    ),
    "density_2d whose log_prob is NaN": (
        lambda: plotting.density_2d(lambda p: p[:, 0] * float("nan"), n=10),
        "NaN",
    ),
    "density_2d of a tensor": (lambda: plotting.density_2d(torch.zeros(3)), "function"),
    # training
    "LossHistory.log of a vector": (
        lambda: training.LossHistory().log(loss=torch.ones(2)),
        "loss.item\\(\\)",
    ),
    "LossHistory.log of a string": (
        lambda: training.LossHistory().log(loss="abc"),
        "needs a number",
    ),
    "LossHistory.log of None": (lambda: training.LossHistory().log(loss=None), "needs a number"),
    "LossHistory with live_every -1": (lambda: training.LossHistory(live_every=-1), "live_every"),
    "load_or_train with retrain='no'": (
        lambda: training.load_or_train("x", Tiny(), lambda m: {}, retrain="no"),
        "True, False or None",
    ),
    "load_or_train with train_fn=None": (
        lambda: training.load_or_train("x", Tiny(), None),
        "without \\(\\)",
    ),
    "load_or_train with a state dict": (
        lambda: training.load_or_train("x", {}, lambda m: {}),
        "nn.Module",
    ),
    # checkpoints
    "save_checkpoint of a state dict": (
        lambda: ck.save_checkpoint("m.pt", Tiny().state_dict()),
        "model itself",
    ),
    "save_checkpoint of an optimiser in metadata": (
        lambda: ck.save_checkpoint(
            "m.pt", Tiny(), metadata={"opt": torch.optim.SGD(Tiny().parameters(), 1)}
        ),
        "state_dict",
    ),
    "save_checkpoint with metadata not a dict": (
        lambda: ck.save_checkpoint("m.pt", Tiny(), metadata=[1]),
        "metadata must be a dict",
    ),
    "save_checkpoint with a path of None": (lambda: ck.save_checkpoint(None, Tiny()), "file name"),
    "load_into a plain state dict": (
        lambda: ck.load_into(Tiny(), Tiny().state_dict()),
        "load_state_dict",
    ),
    "load_into None": (lambda: ck.load_into(None, {}), "nn.Module"),
    "load_into an int": (lambda: ck.load_into(Tiny(), 5), "checkpoint path"),
    "misspelt shipped checkpoint": (
        lambda: ck.shipped_path("vae_mnsit"),
        "Did you mean 'vae_mnist'",
    ),
    # bench
    "bench.record of a vector": (lambda: bench.record(fid=torch.ones(2)), "fid.item\\(\\)"),
    "bench.record of NaN": (lambda: bench.record(fid=float("nan")), "finite"),
    "bench.record of an object": (lambda: bench.record(fid=object()), "number or a string"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gets_a_clear_error(case):
    call, pattern = BAD_INPUTS[case]
    with pytest.raises(CLEAR, match=pattern) as info:
        call()
    message = str(info.value)
    assert len(message) < 600 and "Traceback" not in message


GOOD_INPUTS = {
    "seed as a NumPy int": lambda: config.seed_everything(np.int64(3)),
    "seed 2**64 - 1": lambda: config.seed_everything(2**64 - 1),
    "device as a torch.device": lambda: config.get_device(torch.device("cpu")),
    "n as a NumPy int": lambda: data.load_images("mnist", "test", n=np.int64(5)),
    "n equal to the split": lambda: data.load_images("mnist", "test", n=10000),
    "fid of a list of images": lambda: metrics.fid(list(X), X),
    "fid of a NumPy array": lambda: metrics.fid(X.numpy(), X),
    "fid of (N, 28, 28) images": lambda: metrics.fid(X[:, 0], X),
    "fid of flat images": lambda: metrics.fid(X.view(4, 784), X),
    "class_accuracy of a list of images and labels": lambda: metrics.class_accuracy(
        list(X), [1, 2, 3, 4]
    ),
    "class_entropy of float whole labels": lambda: metrics.class_entropy(torch.tensor([1.0, 2.0])),
    "show_images of a list of tensors": lambda: plotting.show_images(list(X)),
    "show_images of a tensor that requires grad": lambda: plotting.show_images(
        X.clone().requires_grad_()
    ),
    "show_images slightly out of range": lambda: plotting.show_images(X * 1.1 - 0.05),
    "show_images of 0-255 with vmax=255": lambda: plotting.show_images(X * 255, vmax=255),
    "show_images of RGB in [-1, 1]": lambda: plotting.show_images(
        torch.rand(2, 3, 8, 8) * 2 - 1, vmin=-1
    ),
    "plot_losses of a LossHistory": lambda: plotting.plot_losses(_history()),
    "plot_losses of tensors that require grad": lambda: plotting.plot_losses(
        {"l": [torch.tensor(1.0, requires_grad=True)]}
    ),
    "scatter_2d of a list of points": lambda: plotting.scatter_2d([torch.zeros(2), torch.ones(2)]),
    "density_2d with huge log-densities": lambda: plotting.density_2d(
        lambda p: 1e4 - p.pow(2).sum(1), n=10
    ),
    "bench.record of a tensor and a NumPy scalar": lambda: bench.record(
        a=torch.tensor(1.5), b=np.float32(2)
    ),
}


def _history():
    h = training.LossHistory()
    h.log(loss=np.float32(1.0))
    h.log(loss=torch.tensor([0.5]))
    return h


@pytest.mark.parametrize("case", sorted(GOOD_INPUTS))
def test_reasonable_input_is_accepted(case, monkeypatch):
    monkeypatch.delenv(bench.METRICS_ENV, raising=False)
    GOOD_INPUTS[case]()


def test_bench_record_converts_tensors_and_numpy():
    assert bench.record(a=torch.tensor(1.23456), b=np.float64(2.0), c=3) == {
        "a": 1.2346,
        "b": 2.0,
        "c": 3,
    }


# --------------------------------------------------------------------------------------------------
# Environment variables and damaged files
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value,expected",
    [
        ("1", True),
        ("true", True),
        ("YES", True),
        (" On ", True),
        ("0", False),
        ("false", False),
        ("No", False),
        ("OFF", False),
        ("", False),
    ],
)
def test_retrain_env_values(monkeypatch, value, expected):
    monkeypatch.setenv(training.RETRAIN_ENV, value)
    assert training.retrain_requested() is expected


@pytest.mark.parametrize("value", ["maybe", "2", "nope", "y e s"])
def test_retrain_env_rejects_anything_else(monkeypatch, value):
    monkeypatch.setenv(training.RETRAIN_ENV, value)
    with pytest.raises(ValueError, match=training.RETRAIN_ENV):
        training.retrain_requested()
    with pytest.raises(ValueError, match=training.RETRAIN_ENV):
        training.load_or_train("classifier_mnist", Tiny(), lambda m: {})


def test_retrain_no_loads_the_shipped_checkpoint(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(config.DATA_ENV, str(tmp_path))
    path = ck.save_checkpoint(ck.checkpoint_dir() / "net.pt", Tiny())
    ck.register_checkpoint(
        "net", path, lesson="t", command="c", device="cpu", wall_seconds=1, quality={}
    )
    monkeypatch.setenv(training.RETRAIN_ENV, "no")
    assert (
        training.load_or_train("net", Tiny(), lambda m: {"trained": True})["source"] == "checkpoint"
    )
    # a misspelt name trains, but says which name it probably meant
    assert training.load_or_train("nte", Tiny(), lambda m: None)["source"] == "trained"
    assert "did you mean 'net'" in capsys.readouterr().out


def test_device_env_is_named(monkeypatch):
    monkeypatch.setenv(config.DEVICE_ENV, "tpu")
    with pytest.raises(ValueError, match=config.DEVICE_ENV):
        config.get_device()


def test_data_env_pointing_nowhere(monkeypatch, tmp_path):
    monkeypatch.setenv(config.DATA_ENV, str(tmp_path / "nowhere"))
    data._manifest.cache_clear()
    with pytest.raises(data.DataError, match=f"{config.DATA_ENV} is set"):
        data.load_text("names")
    with pytest.raises(ck.CheckpointError, match=f"{config.DATA_ENV} is set"):
        ck.shipped_path("classifier_mnist")


@pytest.mark.parametrize(
    "body", ["{not json", '{"files": ', '{"other": {}}', '{"files": {"a": 3}}', "\x00\xff"]
)
def test_damaged_data_manifest(monkeypatch, tmp_path, body):
    (tmp_path / "manifest.json").write_text(body, encoding="latin-1")
    monkeypatch.setenv(config.DATA_ENV, str(tmp_path))
    data._manifest.cache_clear()
    with pytest.raises(data.DataError, match="manifest.json is damaged.*git checkout"):
        data.load_text("names")
    data._manifest.cache_clear()


@pytest.mark.parametrize("body", ["{not json", '{"checkpoints": ', '{"checkpoints": []}',
                                  '{"checkpoints": {"x": {"file": "x.pt"}}}', ""])
def test_damaged_checkpoint_manifest(monkeypatch, tmp_path, body):
    monkeypatch.setenv(config.DATA_ENV, str(tmp_path))
    ck.checkpoint_dir().mkdir()
    (ck.checkpoint_dir() / "manifest.json").write_text(body)
    for call in (ck.read_manifest, lambda: ck.shipped_path("x"),
                 lambda: training.load_or_train("x", Tiny(), lambda m: {})):
        with pytest.raises(ck.CheckpointError, match="damaged.*git checkout"):
            call()


def test_missing_checkpoint_manifest(monkeypatch, tmp_path):
    monkeypatch.setenv(config.DATA_ENV, str(tmp_path))
    with pytest.raises(ck.CheckpointError, match="manifest .* is missing"):
        ck.shipped_path("vae_mnist")


# --------------------------------------------------------------------------------------------------
# Nothing lost: a refused save leaves the previous file byte for byte
# --------------------------------------------------------------------------------------------------
class Opaque:
    pass


def _nan_model():
    m = Tiny()
    with torch.no_grad():
        m.fc.weight[0, 0] = float("nan")
    return m


def _huge_model():
    m = Tiny()
    with torch.no_grad():
        m.fc.weight.fill_(1e6)
    return m


REFUSED_SAVES = {
    "an object in metadata": (
        lambda p: ck.save_checkpoint(p, Tiny(), metadata={"x": Opaque()}),
        TypeError,
    ),
    "a set in the config": (
        lambda p: ck.save_checkpoint(p, Tiny(), config={"x": {1, 2}}),
        TypeError,
    ),
    "a function in the config": (
        lambda p: ck.save_checkpoint(p, Tiny(), config={"act": torch.relu}),
        TypeError,
    ),
    "NaN weights": (lambda p: ck.save_checkpoint(p, _nan_model()), ck.CheckpointError),
    "weights beyond float16": (
        lambda p: ck.save_checkpoint(p, _huge_model(), half=True),
        ck.CheckpointError,
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED_SAVES))
def test_refused_save_leaves_the_previous_file_byte_identical(tmp_path, case):
    path = ck.save_checkpoint(tmp_path / "good.pt", Tiny(), {"hidden": 2}, {"epochs": 1})
    before = path.read_bytes()
    save, error = REFUSED_SAVES[case]
    with pytest.raises(error):
        save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["good.pt"], "no temporary file left behind"
    ck.load_checkpoint(path)


def test_numpy_scalars_paths_and_devices_are_stored_as_plain_values(tmp_path):
    meta = {
        "loss": np.float32(0.5),
        "steps": np.int64(7),
        "where": Path("/tmp/x"),
        "device": torch.device("cpu"),
        "curve": np.arange(3),
        "final": torch.tensor(0.25),
    }
    path = ck.save_checkpoint(tmp_path / "m.pt", Tiny(), {"width": np.int64(4)}, meta)
    payload = torch.load(path, weights_only=True)  # the guarantee: loads safely
    assert payload["config"] == {"width": 4} and type(payload["config"]["width"]) is int
    assert payload["metadata"]["loss"] == 0.5 and payload["metadata"]["where"] == "/tmp/x"
    assert payload["metadata"]["device"] == "cpu" and payload["metadata"]["final"] == 0.25
    assert torch.equal(payload["metadata"]["curve"], torch.arange(3))


def test_nan_weights_on_disk_are_refused_when_loading(tmp_path):
    path = tmp_path / "nan.pt"
    torch.save({"format": ck.FORMAT, "arch": "Tiny", "config": {}, "metadata": {},
                "state_dict": _nan_model().state_dict()}, path)
    model = Tiny()
    before = model.fc.weight.clone()
    with pytest.raises(ck.CheckpointError, match="NaN or infinite weights"):
        ck.load_into(model, path)
    assert torch.equal(model.fc.weight, before)


def test_plain_state_dict_file_is_named(tmp_path):
    torch.save(Tiny().state_dict(), tmp_path / "sd.pt")
    with pytest.raises(ck.CheckpointError, match="plain state dict"):
        ck.load_checkpoint(tmp_path / "sd.pt")


def test_unwritable_folder_is_a_clear_error_and_keeps_the_old_file(tmp_path, monkeypatch):
    path = ck.save_checkpoint(tmp_path / "good.pt", Tiny())
    before = path.read_bytes()

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(ck.tempfile, "mkstemp", read_only)
    with pytest.raises(ck.CheckpointError,
                       match="Cannot write .*Permission denied.*folder you can write"):
        ck.save_checkpoint(path, Tiny())
    assert path.read_bytes() == before


def test_save_to_a_folder_is_refused(tmp_path):
    with pytest.raises(ck.CheckpointError, match="is a folder"):
        ck.save_checkpoint(tmp_path, Tiny())
    with pytest.raises(ck.CheckpointError, match="is a folder"):
        ck.load_checkpoint(tmp_path, expected_sha256="00")


def test_register_checks_everything_before_touching_the_manifest(tmp_path, monkeypatch):
    monkeypatch.setenv(config.DATA_ENV, str(tmp_path))
    path = ck.save_checkpoint(ck.checkpoint_dir() / "t.pt", Tiny())
    good = dict(lesson="x", command="c", device="cpu", wall_seconds=1.0)
    ck.register_checkpoint(
        "t", path, quality={"acc": np.float64(0.5), "fid": torch.tensor(3.0)}, **good
    )
    manifest = ck.checkpoint_dir() / "manifest.json"
    before = manifest.read_bytes()
    assert json.loads(before)["checkpoints"]["t"]["quality"] == {"acc": 0.5, "fid": 3.0}
    outside = ck.save_checkpoint(tmp_path / "outside.pt", Tiny())
    bad_calls = [
        (
            lambda: ck.register_checkpoint("t", path, quality={"acc": float("nan")}, **good),
            ValueError,
        ),
        (lambda: ck.register_checkpoint("t", path, quality={"acc": Opaque()}, **good), TypeError),
        (
            lambda: ck.register_checkpoint("t", path, quality={"acc": torch.ones(3)}, **good),
            TypeError,
        ),
        (lambda: ck.register_checkpoint("t", path, quality=[0.5], **good), TypeError),
        (lambda: ck.register_checkpoint("t", path, quality={1: 0.5}, **good), TypeError),
        (
            lambda: ck.register_checkpoint("t", tmp_path / "nope.pt", quality={}, **good),
            FileNotFoundError,
        ),
        (lambda: ck.register_checkpoint("t", outside, quality={}, **good), ValueError),
        (
            lambda: ck.register_checkpoint("t", path, quality={}, **dict(good, wall_seconds=-1)),
            ValueError,
        ),
    ]
    for call, error in bad_calls:
        with pytest.raises(error):
            call()
        assert manifest.read_bytes() == before


def test_load_or_train_mismatch_suggests_retraining(tmp_path, monkeypatch):
    monkeypatch.setenv(config.DATA_ENV, str(tmp_path))
    path = ck.save_checkpoint(ck.checkpoint_dir() / "net.pt", Tiny())
    ck.register_checkpoint(
        "net", path, lesson="t", command="c", device="cpu", wall_seconds=1, quality={}
    )
    with pytest.raises(ck.CheckpointError, match="(?s)does not fit.*retrain=True"):
        training.load_or_train("net", nn.Linear(3, 3), lambda m: {})
    with pytest.raises(TypeError, match="train_fn should return a dict"):
        training.load_or_train("other", Tiny(), lambda m: 3.0)


# --------------------------------------------------------------------------------------------------
# Exercise checkers: copies of inputs, in-place changes fail, endless loops time out, nothing raises
# --------------------------------------------------------------------------------------------------
def test_checker_fails_an_in_place_answer_and_leaves_cases_intact(capsys):
    def in_place(x):
        return x.mul_(2).sub_(1)

    assert not lesson00.check_to_symmetric(in_place)
    assert "changed its input x in place" in capsys.readouterr().out
    assert lesson00.check_to_symmetric(
        lambda x: 2 * x - 1
    )  # the cases were not corrupted by the first run


def test_checker_gives_the_learner_copies(capsys):
    seen = []
    case_input = torch.zeros(3)
    run_checks("t", lambda x: seen.append(x) or x.sum(), [Case((case_input,), torch.tensor(0.0))])
    assert seen[0] is not case_input


@pytest.mark.parametrize("fn", [
    lambda x, p, g: x.masked_fill_(torch.rand(x.shape, generator=g) < p, 0),
    lambda x, p, g: x.__setitem__(torch.rand(x.shape, generator=g) < p, 0) or x,
])
def test_mask_pixels_in_place_variants_fail(fn, capsys):
    assert not lesson02.check_mask_pixels(fn)
    assert "in place" in capsys.readouterr().out


def test_checker_time_limit_reports_an_endless_loop(capsys):
    def endless(x):
        while True:
            pass

    assert not run_checks("loop", endless, [Case((1,), 1)], time_limit=0.5)
    out = capsys.readouterr().out
    assert "took longer than 0.5 s and was stopped" in out, out and "loop that never ends" in out
    # the loop really stopped: a thread left spinning would slow every later cell (and test)
    assert not [t for t in threading.enumerate() if t.name == "deepgen-check"]


def test_checker_stops_a_loop_that_swallows_exceptions(capsys):
    def stubborn(x):
        while True:
            try:
                time.sleep(0.01)
            except Exception:  # a learner's catch-all must not keep the loop alive
                pass

    assert not run_checks("loop", stubborn, [Case((1,), 1)], time_limit=0.3)
    assert "was stopped" in capsys.readouterr().out
    assert not [t for t in threading.enumerate() if t.name == "deepgen-check"]


@pytest.mark.parametrize("fn", [
    lambda x: 5,                                   # wrong type for the custom compare below
    lambda x: torch.zeros(2, dtype=torch.complex64),
    lambda x: object(),
])
def test_checker_never_raises_on_odd_results(fn, capsys):
    assert not run_checks("t", fn, [Case((1,), torch.zeros(2))])
    shape_only = run_checks(
        "t", fn, [Case((1,), torch.zeros(2))], compare=lambda got, exp: got.shape == exp.shape
    )
    assert isinstance(
        shape_only, CheckResult
    )  # a compare that breaks on the result is a failure, not a crash


def test_checker_error_points_at_the_learners_line(capsys):
    def uses_torch_badly(x):
        return torch.cat([x, torch.zeros(3)])  # the error is raised inside torch

    assert not run_checks("t", uses_torch_badly, [Case((torch.zeros(2, 2),), 1)])
    out = capsys.readouterr().out
    line = uses_torch_badly.__code__.co_firstlineno + 1
    assert f"line {line} of your code" in out


def test_seeded_noise_second_call_errors_are_reported(capsys):
    calls = []

    def flaky(seed):
        calls.append(seed)
        if len(calls) > 3:
            raise RuntimeError("boom")
        return torch.randn(16, 2, generator=torch.Generator().manual_seed(seed))

    assert not lesson00.check_seeded_noise(flaky)
    assert "boom" in capsys.readouterr().out


# --------------------------------------------------------------------------------------------------
# bench and publish
# --------------------------------------------------------------------------------------------------
def test_markdown_table_after_a_failed_lesson():
    failed = {
        "lesson": "03_x",
        "mode": "default",
        "device": "unknown",
        "wall_s": 12.3,
        "peak_mb": None,
        "metrics": {},
        "error": "CellExecutionError: boom | bang",
    }
    table = bench.markdown_table([failed])
    assert (
        "| 03_x | default | unknown | 12 s | – | **failed**: CellExecutionError: boom / bang |"
        in table
    )


def test_record_refuses_a_damaged_metrics_file(tmp_path, monkeypatch):
    target = tmp_path / "m.json"
    target.write_text("{broken")
    monkeypatch.setenv(bench.METRICS_ENV, str(target))
    with pytest.raises(ValueError, match=bench.METRICS_ENV):
        bench.record(fid=1.0)


@pytest.mark.parametrize("argv,message", [
    (["execute", "notebooks/00_welcome_and_setup.ipynb", "--mode", "turbo"],
     "invalid choice: 'turbo'"),
    (["execute", "no_such.ipynb"], "not a notebook file"),
])
def test_publish_execute_validates_its_arguments(argv, message, capsys):
    from deepgen_helpers import publish

    with pytest.raises(SystemExit) as info:
        publish.main(argv)
    assert info.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--mode", "turbo"], ["--timeout", "0"]])
def test_bench_validates_its_arguments(argv, capsys):
    with pytest.raises(SystemExit) as info:
        bench.main(argv)
    assert info.value.code == 2


def test_checker_copies_keep_requires_grad():
    seen = []
    z = torch.zeros(3, requires_grad=True)
    run_checks("t", lambda v: seen.append(v.requires_grad and v.is_leaf) or 1, [Case((z,), 1)])
    assert seen == [True]


# --------------------------------------------------------------------------------------------------
# Class labels given to conditional models: lists and numbers work, mistakes name the argument
# --------------------------------------------------------------------------------------------------
def test_conditional_samplers_take_lists_and_refuse_bad_classes():
    from deepgen_helpers.models import dcgan
    from deepgen_helpers.models.vae import ConditionalVAE, VAEConfig

    cvae = ConditionalVAE(VAEConfig(n_classes=10))
    assert cvae.sample([1, 2, 3]).shape == (3, 1, 28, 28)
    assert cvae.sample(7).shape == (1, 1, 28, 28)
    with pytest.raises(ValueError, match="y must be classes 0 to 9"):
        cvae.sample([1, 12])
    with pytest.raises(ValueError, match="one-hot"):
        cvae.sample(torch.eye(10)[:3])
    g = dcgan.Generator(dcgan.GANConfig(n_classes=10))
    assert dcgan.sample(g, 3, y=[1, 2, 3]).shape == (3, 1, 28, 28)
    with pytest.raises(ValueError, match=r"y must have shape \(3,\)"):
        dcgan.sample(g, 3, y=[1, 2])
    with pytest.raises(ValueError, match="unconditional"):
        dcgan.sample(dcgan.Generator(dcgan.GANConfig()), 3, y=[1, 2, 3])
