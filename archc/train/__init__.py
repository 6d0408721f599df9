"""Training, fine-tuning and weight loading for compiled specs (`archc train`)."""

from archc.train.loop import TrainConfig, fit, train
from archc.train.weights import load_weights

__all__ = ["TrainConfig", "fit", "train", "load_weights"]
