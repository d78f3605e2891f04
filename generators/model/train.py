"""Train the melody GRU on the cached corpus and save a weights-only checkpoint plus its NumPy export.

Every hyper-parameter is a keyword of ``train`` with its default at the top of this file.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from generators.model import tokens
from generators.model.corpus import build_corpus, load_corpus
from generators.model.model import MelodyGRU, ModelConfig

PACKAGE_DIR = Path(__file__).resolve().parent
CHECKPOINT = PACKAGE_DIR / "checkpoint.pt"
NUMPY_WEIGHTS = PACKAGE_DIR / "weights.npz"

# -- hyper-parameters (the shipped checkpoint used these; docs/generator.md records the run) --
N_EMBD = 256
N_HIDDEN = 256
N_LAYER = 2
DROPOUT = 0.1
BATCH_SIZE = 32
SEQ_LEN = 128  # tokens per training window (about 5 bars)
LEARNING_RATE = 3e-3
MIN_LR_FRACTION = 0.05  # cosine decay floor, as a fraction of LEARNING_RATE
WARMUP_STEPS = 100
WEIGHT_DECAY = 0.01
GRAD_CLIP = 1.0
MAX_STEPS = 2000
MAX_MINUTES = 20.0  # wall-clock cap: training stops early (and still saves) when it is reached
EVAL_EVERY = 250
EVAL_WINDOWS = 96  # held-out windows per validation estimate
SEED = 1234
THREADS = 1  # torch threads: the machine is shared; one core is the contract


def _stream(seqs: list[np.ndarray]) -> np.ndarray:
    """All sequences back to back (each starts with BOS) as one int64 token stream."""
    return np.concatenate(seqs).astype(np.int64)


def _batch(stream: np.ndarray, starts: np.ndarray, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    idx = starts[:, None] + np.arange(seq_len + 1)[None, :]
    chunk = torch.from_numpy(stream[idx])
    return chunk[:, :-1], chunk[:, 1:]


@torch.no_grad()
def evaluate_loss(model: MelodyGRU, stream: np.ndarray, seq_len: int, windows: int, seed: int = 0) -> float:
    """Mean next-token cross-entropy (nats) over ``windows`` fixed random windows of ``stream``."""
    model.eval()
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, len(stream) - seq_len - 1, size=windows)
    losses = []
    for i in range(0, windows, 32):
        x, y = _batch(stream, starts[i:i + 32], seq_len)
        logits, _ = model(x)
        losses.append(F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1)).item() * len(x))
    model.train()
    return float(sum(losses) / windows)


def train(corpus: Path | str | None = None, out: Path | str = CHECKPOINT, *, include_essen: bool = False,
          n_embd: int = N_EMBD, n_hidden: int = N_HIDDEN, n_layer: int = N_LAYER, dropout: float = DROPOUT,
          batch_size: int = BATCH_SIZE, seq_len: int = SEQ_LEN, learning_rate: float = LEARNING_RATE,
          max_steps: int = MAX_STEPS, max_minutes: float = MAX_MINUTES, eval_every: int = EVAL_EVERY,
          eval_windows: int = EVAL_WINDOWS, seed: int = SEED, threads: int = THREADS, progress: bool = True,
          export_numpy: bool = True) -> dict:
    """Train from the corpus npz (built, or taken from the cache, when ``corpus`` is None) and save ``out``.

    Returns the run summary also stored in the checkpoint: steps, minutes, train/validation loss (nats per
    token), parameter count, data hash. The NumPy export goes next to ``out`` as ``weights.npz``.
    """
    from tqdm import tqdm

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    corpus = Path(corpus) if corpus is not None else build_corpus(include_essen=include_essen, progress=progress)
    arrays = load_corpus(corpus)
    train_stream = _stream(tokens.encode_corpus(arrays, split=0, augment=True))
    valid_stream = _stream(tokens.encode_corpus(arrays, split=1, augment=False))
    if len(valid_stream) < seq_len + 2 or len(train_stream) < seq_len + 2:
        raise ValueError(f"corpus {corpus} is too small for seq_len={seq_len}; build it with a larger limit")

    config = ModelConfig(vocab_size=len(tokens.VOCAB), n_embd=n_embd, n_hidden=n_hidden, n_layer=n_layer,
                         dropout=dropout)
    model = MelodyGRU(config)
    opt = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=WEIGHT_DECAY)
    train_config = {k: v for k, v in dict(
        batch_size=batch_size, seq_len=seq_len, learning_rate=learning_rate, max_steps=max_steps,
        max_minutes=max_minutes, seed=seed, threads=threads, warmup_steps=WARMUP_STEPS,
        weight_decay=WEIGHT_DECAY, grad_clip=GRAD_CLIP, min_lr_fraction=MIN_LR_FRACTION,
        include_essen=bool(arrays["meta"].get("include_essen", False)), corpus_file=corpus.name,
        train_tokens=int(len(train_stream)), valid_tokens=int(len(valid_stream))).items()}

    def lr_at(step: int, minutes: float) -> float:
        if step < WARMUP_STEPS:
            return learning_rate * (step + 1) / WARMUP_STEPS
        # Progress is by steps or by the wall-clock cap, whichever is further along, so the learning rate has
        # decayed when the cap stops a run slowed by other jobs on a shared machine.
        frac = min(1.0, max((step - WARMUP_STEPS) / max(1, max_steps - WARMUP_STEPS), minutes / max_minutes))
        return learning_rate * (MIN_LR_FRACTION + (1 - MIN_LR_FRACTION) * 0.5 * (1 + math.cos(math.pi * frac)))

    initial_valid = evaluate_loss(model, valid_stream, seq_len, eval_windows)
    history = [(0, None, initial_valid)]
    t0 = time.perf_counter()
    bar = tqdm(range(max_steps), desc="training", disable=not progress, unit="step")
    running, step = None, 0
    for step in bar:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, (time.perf_counter() - t0) / 60)
        x, y = _batch(train_stream, rng.integers(0, len(train_stream) - seq_len - 1, size=batch_size), seq_len)
        logits, _ = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        opt.step()
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        minutes = (time.perf_counter() - t0) / 60
        if (step + 1) % eval_every == 0 or step + 1 == max_steps or minutes >= max_minutes:
            valid = evaluate_loss(model, valid_stream, seq_len, eval_windows)
            history.append((step + 1, running, valid))
            bar.set_postfix(train=f"{running:.3f}", valid=f"{valid:.3f}")
        else:
            bar.set_postfix(train=f"{running:.3f}")
        if minutes >= max_minutes:
            break
    bar.close()
    summary = {
        "steps": step + 1, "minutes": round((time.perf_counter() - t0) / 60, 2), "train_loss": history[-1][1],
        "valid_loss": history[-1][2], "initial_valid_loss": initial_valid, "params": model.num_params(),
        "data_hash": arrays["meta"]["hash"],
        "history": [[s, tr, va] for s, tr, va in history],
    }
    save_checkpoint(model, out, train_config, summary)
    if export_numpy:
        export_weights(model, Path(out).with_name(NUMPY_WEIGHTS.name), summary["data_hash"])
    return summary


def save_checkpoint(model: MelodyGRU, path: Path | str, train_config: dict, summary: dict) -> None:
    """Tensors and plain Python values only, so ``torch.load(..., weights_only=True)`` reads it."""
    torch.save({
        "model": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "config": model.config.to_dict(),
        "train_config": train_config,
        "summary": summary,
        "vocab": list(tokens.VOCAB),
        "data_hash": summary["data_hash"],
    }, path)


def load_checkpoint(path: Path | str = CHECKPOINT) -> tuple[MelodyGRU, dict]:
    """The model in eval mode and the checkpoint's metadata; refuses a checkpoint from another vocabulary."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if ckpt["vocab"] != list(tokens.VOCAB):
        raise ValueError(f"checkpoint {path} was trained with a different token vocabulary; retrain it "
                         "with `heartsong train`")
    model = MelodyGRU(ModelConfig(**ckpt["config"]))
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model, {k: v for k, v in ckpt.items() if k != "model"}


def export_weights(model: MelodyGRU, path: Path | str, data_hash: str) -> None:
    """Float32 arrays named as in the torch state dict, plus the config and vocabulary as JSON (no pickle)."""
    arrays = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    meta = {"config": model.config.to_dict(), "vocab": list(tokens.VOCAB), "data_hash": data_hash}
    np.savez(path, **arrays, meta=np.array(json.dumps(meta)))
