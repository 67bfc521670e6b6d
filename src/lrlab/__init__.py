"""lrlab: learning-rate experiments with Hydra-composed configs and PyTorch Lightning.

Importing the package is cheap on purpose: torch and Lightning load only when a run starts.
"""

__version__ = "0.1.0"
