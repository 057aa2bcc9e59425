import matplotlib
import matplotlib.pyplot as plt
import pytest
import torch
from torch import nn

from deepgen_helpers import checkpoints, plotting, training


def test_make_grid_shapes_and_padding():
    grid = plotting.make_grid(torch.zeros(10, 1, 28, 28), nrow=4, pad=2, pad_value=1.0)
    assert grid.shape == (1, 3 * 30 + 2, 4 * 30 + 2)
    assert grid[0, 0, 0] == 1.0 and grid[0, 2, 2] == 0.0
    assert plotting.make_grid(torch.zeros(3, 784), nrow=3).shape == (1, 30, 88)
    with pytest.raises(ValueError, match="square"):
        plotting.make_grid(torch.zeros(2, 10))


def test_plots_use_the_given_axes_and_leave_global_state_alone():
    before = dict(matplotlib.rcParams)
    fig, axes = plt.subplots(1, 4)
    assert plotting.show_images(torch.rand(4, 1, 8, 8), ax=axes[0]) is axes[0]
    assert plotting.plot_losses({"loss": [3, 2, 1]}, ax=axes[1]) is axes[1]
    assert plotting.scatter_2d(torch.randn(50, 2), ax=axes[2]) is axes[2]
    assert plotting.density_2d(lambda p: -0.5 * (p ** 2).sum(1), ax=axes[3], n=20) is axes[3]
    assert dict(matplotlib.rcParams) == before
    plt.close(fig)
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        plotting.scatter_2d(torch.randn(5, 3))


def test_loss_history():
    h = training.LossHistory()
    for v in (4.0, 2.0, torch.tensor(0.0)):
        h.log(loss=v)
    assert len(h) == 3 and h.mean("loss") == 2.0 and h.mean("loss", last=2) == 1.0
    with pytest.raises(KeyError, match="loss"):
        h.mean("kl")
    fig, ax = plt.subplots()
    assert h.plot(ax=ax) is ax
    plt.close(fig)


def test_progress_is_iterable():
    assert list(training.progress(range(3), desc="x")) == [0, 1, 2]


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 2)


def test_load_or_train(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPGEN_DATA", str(tmp_path))
    calls = []

    def train(model):
        calls.append(1)
        return {"steps": 5}

    info = training.load_or_train("net", Net(), train)
    assert info == {"source": "trained", "steps": 5} and calls == [1]
    trained = Net()
    path = checkpoints.save_checkpoint(checkpoints.checkpoint_dir() / "net.pt", trained)
    checkpoints.register_checkpoint(
        "net",
        path,
        lesson="test",
        command="none",
        device="cpu",
        wall_seconds=1,
        quality={"loss": 0.1},
    )
    fresh = Net()
    info = training.load_or_train("net", fresh, train)
    assert info["source"] == "checkpoint" and calls == [1]
    assert torch.equal(fresh.fc.weight, trained.fc.weight)
    assert training.load_or_train("net", Net(), train, retrain=True)[
        "source"
    ] == "trained" and calls == [1, 1]


def test_headless_progress_prints_one_line_per_bar(monkeypatch, capsys):
    from deepgen_helpers import training

    monkeypatch.setenv(training.PLAIN_PROGRESS_ENV, "1")
    bar = training.progress(total=500, desc="VAE")
    for i in range(500):
        bar.update(1)
        bar.set_postfix(loss=f"{1 / (i + 1):.3f}", refresh=False)
    bar.close()
    bar.close()                                             # closing twice reports once
    for _ in training.progress(range(30), desc="sweep"):    # as an iterator: closes itself
        pass
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("VAE: 500 steps in ") and lines[0].endswith("loss=0.002")
    assert lines[1].startswith("sweep: 30 steps in ")
    stopped = training.progress(total=10, desc="early")
    stopped.update(3)
    stopped.close()
    assert capsys.readouterr().out.startswith("early: 3/10 steps")


def test_show_images_refuses_0_255_pixels_instead_of_a_white_grid():
    with pytest.raises(ValueError, match="divide by 255"):
        plotting.show_images(torch.rand(4, 1, 8, 8) * 255)
    fig, ax = plt.subplots()
    assert plotting.show_images(torch.rand(4, 1, 8, 8) * 255, vmax=255, ax=ax) is ax
    plt.close(fig)


@pytest.mark.parametrize(
    "value,retrain", [("no", False), ("OFF", False), ("yes", True), ("1", True)]
)
def test_retrain_env_means_what_it_says(tmp_path, monkeypatch, value, retrain):
    monkeypatch.setenv("DEEPGEN_DATA", str(tmp_path))
    path = checkpoints.save_checkpoint(checkpoints.checkpoint_dir() / "net.pt", Net())
    checkpoints.register_checkpoint(
        "net", path, lesson="t", command="c", device="cpu", wall_seconds=1, quality={}
    )
    monkeypatch.setenv(training.RETRAIN_ENV, value)
    source = training.load_or_train("net", Net(), lambda m: None)["source"]
    assert source == ("trained" if retrain else "checkpoint")
    monkeypatch.setenv(training.RETRAIN_ENV, "maybe")
    with pytest.raises(ValueError, match="DEEPGEN_RETRAIN='maybe'"):
        training.load_or_train("net", Net(), lambda m: None)
