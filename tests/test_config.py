import pytest
import torch

from deepgen_helpers import config


def test_mode_defaults_and_reads_env(monkeypatch):
    monkeypatch.delenv(config.MODE_ENV, raising=False)
    assert config.get_mode() == "default"
    monkeypatch.setenv(config.MODE_ENV, "FAST")
    assert config.get_mode() == "fast"


def test_unknown_mode_names_the_value_and_the_choices(monkeypatch):
    monkeypatch.setenv(config.MODE_ENV, "turbo")
    with pytest.raises(ValueError, match="turbo.*fast"):
        config.get_mode()


def test_device_override_and_errors(monkeypatch):
    monkeypatch.delenv(config.DEVICE_ENV, raising=False)
    assert config.get_device("cpu") == torch.device("cpu")
    monkeypatch.setenv(config.DEVICE_ENV, "cpu")
    assert config.get_device() == torch.device("cpu")
    with pytest.raises(ValueError, match="Unknown device"):
        config.get_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            config.get_device("cuda")


def test_seed_everything_is_reproducible():
    config.seed_everything(3)
    a = torch.randn(5)
    config.seed_everything(3)
    assert torch.equal(a, torch.randn(5))
    with pytest.raises(ValueError):
        config.seed_everything(-1)


def test_setup_and_pick(monkeypatch, capsys):
    monkeypatch.setenv(config.MODE_ENV, "fast")
    run = config.setup(seed=1, device="cpu")
    out = capsys.readouterr().out
    assert "mode" in out and "torch" in out and "fast" in out
    assert run.fast and run.pick(fast=1, default=2, cuda=3) == 1
    default_run = config.RunConfig("default", torch.device("cpu"), 0)
    assert default_run.pick(fast=1, default=2, cuda=3) == 2
    cuda = config.RunConfig("default", torch.device("cuda"), 0)
    mps = config.RunConfig("default", torch.device("mps"), 0)
    assert cuda.pick(fast=1, default=2, cuda=3, mps=4) == 3 and cuda.budget == "cuda"
    assert cuda.pick(fast=1, default=2) == 2
    assert (
        mps.pick(fast=1, default=2, cuda=3) == 2 and mps.budget == "mps"
    )  # MPS: the CPU budget by default
    assert mps.pick(fast=1, default=2, cuda=3, mps=4) == 4
    assert default_run.budget == "cpu" and run.budget == "fast"


def test_data_dir_override(monkeypatch, tmp_path):
    monkeypatch.setenv(config.DATA_ENV, str(tmp_path))
    assert config.data_dir() == tmp_path.resolve()


def test_budget_override(monkeypatch):
    cpu = config.RunConfig("default", torch.device("cpu"), 0)
    monkeypatch.setenv(config.BUDGET_ENV, "cuda")
    assert cpu.budget == "cuda" and cpu.pick(fast=1, default=2, cuda=3) == 3
    assert config.RunConfig("fast", torch.device("cpu"), 0).pick(fast=1, default=2, cuda=3) == 1
    monkeypatch.setenv(config.BUDGET_ENV, "gpu")
    with pytest.raises(ValueError, match="DEEPGEN_BUDGET='gpu' is not a budget"):
        cpu.budget


@pytest.mark.parametrize("seed", [2**64, 2**70, -1, True, 1.5, "0"])
def test_seed_everything_refuses_what_torch_cannot_take(seed):
    with pytest.raises(ValueError, match="whole number from 0 to 2\\*\\*64 - 1"):
        config.seed_everything(seed)


def test_seed_everything_takes_the_whole_range():
    import numpy as np

    for seed in (0, np.int64(7), 2**64 - 1):
        assert isinstance(config.seed_everything(seed), torch.Generator)
