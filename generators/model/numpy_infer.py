"""NumPy-only forward pass of the melody GRU from exported weights (weights.npz), for devices without torch."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

WEIGHTS = Path(__file__).resolve().parent / "weights.npz"


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free form of 1 / (1 + exp(-x))


class NumpyMelodyGRU:
    """Same equations as torch.nn.GRU (gate order r, z, n) in float64, one token at a time."""

    def __init__(self, path: Path | str = WEIGHTS):
        with np.load(path, allow_pickle=False) as z:
            w = {k: z[k] for k in z.files}
        meta = json.loads(str(w.pop("meta")))
        self.config, self.vocab, self.data_hash = meta["config"], meta["vocab"], meta["data_hash"]
        self.n_layer, self.n_hidden = self.config["n_layer"], self.config["n_hidden"]
        f64 = {k: v.astype(np.float64) for k, v in w.items()}
        self.embed = f64["embed.weight"]
        # Input-side matrices transposed once so a step is x @ W (row vector convention).
        self.w_ih = [f64[f"gru.weight_ih_l{i}"].T.copy() for i in range(self.n_layer)]
        self.w_hh = [f64[f"gru.weight_hh_l{i}"].T.copy() for i in range(self.n_layer)]
        self.b_ih = [f64[f"gru.bias_ih_l{i}"] for i in range(self.n_layer)]
        self.b_hh = [f64[f"gru.bias_hh_l{i}"] for i in range(self.n_layer)]
        self.head_w, self.head_b = f64["head.weight"].T.copy(), f64["head.bias"]

    def initial_state(self) -> np.ndarray:
        """Zero state [n_layer, n_hidden], as torch uses when no state is given."""
        return np.zeros((self.n_layer, self.n_hidden))

    def step(self, token: int, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Feed one token id; return (logits [vocab], new state). ``state`` is not modified."""
        x = self.embed[token]
        new = np.empty_like(state)
        h_size = self.n_hidden
        for layer in range(self.n_layer):
            h = state[layer]
            gi = x @ self.w_ih[layer] + self.b_ih[layer]
            gh = h @ self.w_hh[layer] + self.b_hh[layer]
            r = _sigmoid(gi[:h_size] + gh[:h_size])
            z = _sigmoid(gi[h_size:2 * h_size] + gh[h_size:2 * h_size])
            n = np.tanh(gi[2 * h_size:] + r * gh[2 * h_size:])
            x = new[layer] = (1.0 - z) * n + z * h
        return x @ self.head_w + self.head_b, new


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max())
    return e / e.sum()
