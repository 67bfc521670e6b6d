"""A user-defined network, as a researcher would write one: only what it needs from lrlab is in its signature."""

import math

from torch import nn


class LinearProbe(nn.Module):
    def __init__(self, input_shape, num_classes, bias=True):
        super().__init__()
        self.linear = nn.Linear(math.prod(input_shape), num_classes, bias=bias)

    def forward(self, x):
        return self.linear(x.flatten(1))
