from lrlab.cli import train

train()
