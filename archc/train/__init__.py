"""Training, fine-tuning and weight loading for compiled specs (`archc train`)."""

from archc.backend.weights import load_weights
from archc.train.loop import TrainConfig, fit, train

__all__ = ["TrainConfig", "fit", "train", "load_weights"]
