"""The melody model, whole in one file: token embedding -> multi-layer GRU -> next-token logits.

A GRU rather than a Transformer because streaming needs only its hidden state (a few kB) between bars,
each new token costs the same, and the NumPy port (numpy_infer.py) is a dozen lines.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass
class ModelConfig:
    vocab_size: int = 128  # set from tokens.VOCAB
    n_embd: int = 256  # token embedding width
    n_hidden: int = 256  # GRU state width per layer
    n_layer: int = 2
    dropout: float = 0.1  # between GRU layers and before the head, training only

    def to_dict(self) -> dict:
        return asdict(self)


class MelodyGRU(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.n_embd)
        self.gru = nn.GRU(config.n_embd, config.n_hidden, num_layers=config.n_layer, batch_first=True,
                          dropout=config.dropout if config.n_layer > 1 else 0.0)
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.n_hidden, config.vocab_size)

    def forward(self, idx: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """idx [B, T] token ids; state [n_layer, B, n_hidden] or None (zeros).

        Returns logits [B, T, vocab_size] and the state after the last token.
        """
        out, state = self.gru(self.embed(idx), state)
        return self.head(self.drop(out)), state

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
