"""The ``model`` config group: networks, built once the data says what goes in and what comes out."""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence

import torch
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig
from torch import nn

from lrlab.errors import ConfigError

NORMS = {"batch": nn.BatchNorm1d, "layer": nn.LayerNorm}


def _activation(name: str) -> nn.Module:
    layer = getattr(nn, name, None)
    if not (isinstance(layer, type) and issubclass(layer, nn.Module)):
        raise ConfigError("model.activation", f"must name a torch.nn activation class such as ReLU, GELU or Tanh (got {name!r})")
    return layer()


class MLP(nn.Sequential):
    """Flatten → [Linear → norm → activation → dropout] per hidden layer → Linear to the classes.

    ``hidden`` lists the hidden widths; when it is null the net has ``depth`` layers of ``width`` units.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        hidden: Sequence[int] | None = None,
        depth: int = 1,
        width: int = 128,
        activation: str = "ReLU",
        dropout: float = 0.0,
        norm: str | None = None,
    ):
        widths = list(hidden) if hidden is not None else [width] * depth
        if any(w < 1 for w in widths):
            raise ConfigError("model.hidden", f"widths must be >= 1 (got {widths})")
        if not 0 <= dropout < 1:
            raise ConfigError("model.dropout", f"must be in [0, 1) (got {dropout})")
        if norm is not None and norm not in NORMS:
            raise ConfigError("model.norm", f"must be null, batch or layer (got {norm!r})")
        layers: list[nn.Module] = [nn.Flatten()]
        fan_in = math.prod(input_shape)
        for w in widths:
            layers.append(nn.Linear(fan_in, w))
            if norm is not None:
                layers.append(NORMS[norm](w))
            layers.append(_activation(activation))
            if dropout:
                layers.append(nn.Dropout(dropout))
            fan_in = w
        layers.append(nn.Linear(fan_in, num_classes))
        super().__init__(*layers)


class CNN(nn.Module):
    """[Conv → ReLU → MaxPool(2)] per entry of ``channels``, then a Linear layer of ``fc_width`` and the classifier.

    Flat inputs of a square size (784 → 1×28×28) are reshaped into single-channel images.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        channels: Sequence[int] = (16, 32),
        kernel_size: int = 3,
        fc_width: int = 64,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.image_shape = self._image_shape(tuple(input_shape))
        blocks: list[nn.Module] = []
        c, size = self.image_shape[0], min(self.image_shape[1:])
        for out in channels:
            blocks += [nn.Conv2d(c, out, kernel_size, padding=kernel_size // 2), nn.ReLU()]
            if size >= 2:
                blocks.append(nn.MaxPool2d(2))
                size //= 2
            c = out
        self.features = nn.Sequential(*blocks)
        with torch.no_grad():
            flat = self.features(torch.zeros(1, *self.image_shape)).numel()
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(flat, fc_width), nn.ReLU(), nn.Dropout(dropout), nn.Linear(fc_width, num_classes)
        )

    @staticmethod
    def _image_shape(shape: tuple[int, ...]) -> tuple[int, int, int]:
        if len(shape) == 3:
            return shape  # type: ignore[return-value]
        side = math.isqrt(math.prod(shape))
        if len(shape) == 1 and side * side == shape[0]:
            return (1, side, side)
        raise ConfigError("model", f"cnn needs image-shaped data (C, H, W) or a flat square size, got input shape {shape}: use model=mlp")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x.reshape(x.shape[0], *self.image_shape)))


def build_network(cfg: DictConfig, input_shape: Sequence[int], num_classes: int) -> nn.Module:
    """Instantiate ``model._target_``, passing ``input_shape`` and ``num_classes`` where its signature takes them.

    Your own ``nn.Module`` works the same way: ``model._target_=mypkg.MyNet`` plus its own keys.
    """
    try:
        target = get_object(cfg._target_)
    except Exception as err:
        raise ConfigError("model._target_", f"cannot be imported (got {cfg._target_!r}): {err}") from err
    params = inspect.signature(target).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    late = {"input_shape": tuple(input_shape), "num_classes": num_classes}
    return instantiate(cfg, **{k: v for k, v in late.items() if takes_any or k in params})
