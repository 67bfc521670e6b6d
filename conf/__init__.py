# Makes conf/ importable as the package `lrlab.conf` (through the link src/lrlab/conf), so Hydra finds the
# configs (pkg://lrlab.conf) in an editable install and inside the wheel alike.
