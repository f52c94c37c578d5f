"""castbench: what image classification backbones cost to train and serve, and what they buy."""

__version__ = "0.1.0"
