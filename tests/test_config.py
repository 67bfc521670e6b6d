"""Every option of every config group composes and instantiates into real objects."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from lrlab.module import Classifier
from lrlab.trainer import build_trainer
from lrlab.training import build_datamodule, build_module
from lrlab.validate import problems

CONF = Path(__file__).resolve().parents[1] / "conf"


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def test_groups_on_disk_match_the_issue():
    assert options("scheduler") == sorted(
        ["constant", "step", "multistep", "exponential", "cosine", "cosine_restarts", "onecycle", "plateau", "polynomial", "linear"]
    )
    assert options("optimizer") == ["adam", "adamw", "rmsprop", "sgd"]
    assert options("data") == ["digits", "fashion_mnist", "mnist", "synthetic"]
    assert options("experiment") == ["seed_cosine_adam", "seed_fixed_adam", "seed_sgd_steplr"]


def _build_all(cfg) -> tuple[Classifier, pl.Trainer]:
    """Data module, network, optimizer and schedulers, and the Trainer: everything a run instantiates."""
    datamodule = build_datamodule(cfg)
    module = build_module(cfg, datamodule)
    optimizer = module.make_optimizer(module.parameters())
    schedulers = module.make_schedulers(optimizer, lambda interval: 50)
    assert isinstance(optimizer, torch.optim.Optimizer)
    assert all(hasattr(s["scheduler"], "step") for s in schedulers)
    x, _ = next(iter(datamodule.train_dataloader().batches))
    assert module(x).shape == (len(x), datamodule.num_classes)
    return module, build_trainer(cfg)


GROUP_OPTIONS = [(g, o) for g in ("model", "optimizer", "scheduler", "warmup", "logger", "callbacks") for o in options(g)]
# option -> what it needs besides itself
NEEDS = {("model", "custom"): ["model._target_=custom_model.LinearProbe"]}


@pytest.mark.parametrize(("group", "option"), GROUP_OPTIONS)
def test_option_composes_and_instantiates(make_cfg, group, option):
    overrides = [f"{group}={option}", *NEEDS.get((group, option), [])]
    if option == "linear" and group == "warmup":
        overrides.append("warmup.steps=5")
    _build_all(make_cfg(*overrides))


@pytest.mark.parametrize(("group", "option"), GROUP_OPTIONS + [("data", o) for o in options("data")]
                         + [("experiment", o) for o in options("experiment")])
def test_every_option_passes_the_pre_launch_checks(make_cfg, mnist_dir, group, option):
    """The checks that run before a run (lrlab.validate) accept every shipped option as it is."""
    overrides = [f"{group}={option}", *NEEDS.get((group, option), [])]
    if option in ("mnist", "fashion_mnist"):
        overrides.append(f"data.data_dir={mnist_dir}")
    if group == "experiment":
        overrides.append("data=digits")  # the presets target MNIST; offline they run on digits
    if (group, option) == ("warmup", "linear"):
        overrides.append("warmup.steps=5")
    assert problems(make_cfg(*overrides)) == []


@pytest.mark.parametrize("option", options("trainer"))
def test_trainer_option_instantiates(make_cfg, option):
    if option == "gpu" and not torch.cuda.is_available():
        pytest.skip("trainer=gpu needs a CUDA device")
    trainer = build_trainer(make_cfg(f"trainer={option}"))
    assert isinstance(trainer, pl.Trainer)


@pytest.mark.parametrize("option", options("data"))
def test_data_option_loads(make_cfg, mnist_dir, option):
    overrides = [f"data={option}"]
    if option in ("mnist", "fashion_mnist"):
        overrides.append(f"data.data_dir={mnist_dir}")  # the same IDX layout serves both
    _build_all(make_cfg(*overrides))


@pytest.mark.parametrize("option", options("experiment"))
def test_experiment_runs_offline_with_digits(make_cfg, option):
    cfg = make_cfg(f"experiment={option}", "data=digits")
    assert cfg.data.source.endswith("digits")  # the command line wins over the preset's data=mnist
    _build_all(cfg)


def test_experiment_targets_mnist(make_cfg):
    assert make_cfg("experiment=seed_sgd_steplr").data.source.endswith("idx")


def test_model_takes_shape_from_data(make_cfg, mnist_dir):
    digits = build_module(make_cfg("model.hidden=[32]"), build_datamodule(make_cfg()))
    mnist_cfg = make_cfg("data=mnist", f"data.data_dir={mnist_dir}", "model.hidden=[32]")
    mnist = build_module(mnist_cfg, build_datamodule(mnist_cfg))
    assert digits.net[1].in_features == 64 and mnist.net[1].in_features == 784


def test_depth_and_width_shape_the_mlp(make_cfg):
    cfg = make_cfg("model.depth=4", "model.width=32")
    linears = [m for m in build_module(cfg, build_datamodule(cfg)).net if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linears] == [32, 32, 32, 32, 10]


def test_cnn_reshapes_flat_square_input(make_cfg):
    cfg = make_cfg("model=cnn", "data=synthetic", "data.features=784", "data.samples=100")
    datamodule = build_datamodule(cfg)
    assert datamodule.input_shape == (784,)
    module = build_module(cfg, datamodule)
    x, _ = next(iter(datamodule.train_dataloader().batches))
    assert module(x).shape == (len(x), 10)


def test_user_model_by_target(make_cfg):
    """Your own nn.Module: model._target_ plus its own keys; it gets input_shape/num_classes if it asks."""
    cfg = make_cfg("model=custom", "model._target_=custom_model.LinearProbe", "+model.bias=false")
    module = build_module(cfg, build_datamodule(cfg))
    assert type(module.net).__name__ == "LinearProbe" and module.net.linear.bias is None


def test_user_config_dir_adds_a_scheduler(make_cfg, tmp_path):
    """A user's own config dir on the search path adds options to lrlab's groups."""
    extra = tmp_path / "myconf" / "scheduler"
    extra.mkdir(parents=True)
    (extra / "halving.yaml").write_text(
        "_target_: torch.optim.lr_scheduler.StepLR\n_partial_: true\nstep_size: 1\ngamma: 0.5\ninterval: epoch\n"
    )
    cfg = make_cfg("scheduler=halving", f"hydra.searchpath=[file://{tmp_path / 'myconf'}]")
    module = build_module(cfg, build_datamodule(cfg))
    optimizer = module.make_optimizer(module.parameters())
    (config,) = module.make_schedulers(optimizer, lambda interval: 10)
    optimizer.step()
    config["scheduler"].step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(cfg.optimizer.lr * 0.5)
