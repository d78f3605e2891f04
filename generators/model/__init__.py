"""The learned melody generator: corpus extraction, tokens, GRU model, training, NumPy inference, evaluation."""
from generators.model.generator import ModelGenerator

__all__ = ["ModelGenerator"]
