"""Per-client personalisation: a Thompson-sampling bandit picks the musical parameters of the next session
within what the therapist allows, and learns from the listener's rating and measured response.

Parameters and their choices (``PARAMETERS``): ``mode`` (every phase's mode), ``tempo_offset_bpm`` (added to
an absolute tempo, or to a heart-rate tempo's floor), ``density_scale`` (times each phase's melody density),
``brightness`` (0 dark - 1 bright, every phase) and ``palette`` (lead instrument beside the pad).

The bandit is linear Thompson sampling (Agrawal & Goyal 2013): the reward is modelled as an intercept plus one
weight per (parameter, choice) (one-hot features, ``FEATURES``), with a ridge prior (``PRIOR_PRECISION``;
intercept prior 0.5) and a noise variance estimated from the residuals (prior ``PRIOR_NOISE_SD``).
``choose`` draws one weight vector from the posterior and, because the model is additive, takes the best
allowed choice of each parameter separately; a locked parameter always takes its locked value. Modelling all
parameters at once credits each reward to the choices that earned it, so one parameter's exploration is not
noise for another's (on the simulated listeners of tests/test_personalisation.py, a per-choice Beta bandit
picked the favourite mode in about a third of sessions 91-100; this model in over 85%).

The reward (``reward``) is a weighted mean of whichever of these are known, each mapped to 0-1:
rating 1-5 -> (rating - 1) / 4 (weight 0.4); heart-rate change end - start -> 0.5 - change / 20 bpm
(a 10 bpm drop scores 1; weight 0.2); RMSSD change end - start -> 0.5 + change / 40 ms (weight 0.15);
breathing adherence 0-1 (weight 0.15); coherence as the share of HRV power in its peak, 0-1 (weight 0.1).
Missing parts drop out and the weights of the rest are renormalised; with nothing known there is no reward
and no update.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from pydantic import Field

from generators.controls import MODES
from therapy_profiles.schema import (
    TEMPO_RANGE,
    ProfileError,
    Protocol,
    _Strict,
    validate_document,
)

STATE_VERSION = 1
PARAMETERS: dict[str, tuple[Any, ...]] = {
    "mode": MODES,
    "tempo_offset_bpm": (-6.0, 0.0, 6.0),
    "density_scale": (0.6, 1.0, 1.5),
    "brightness": (0.25, 0.5, 0.75),
    "palette": ("pad", "piano", "strings", "harp", "bells"),
}
REWARD_WEIGHTS = {"rating": 0.4, "hr_change": 0.2, "rmssd_change": 0.15, "adherence": 0.15, "coherence": 0.1}
HR_CHANGE_FULL_SCALE_BPM = 20.0  # reward span: -10 bpm -> 1, +10 bpm -> 0
RMSSD_CHANGE_FULL_SCALE_MS = 40.0  # reward span: +20 ms -> 1, -20 ms -> 0
PRIOR_PRECISION = 1.0  # ridge prior on every weight: worth one session of evidence
PRIOR_NOISE_SD = 0.2  # reward noise assumed before residuals are known (2 pseudo-observations)
PRIOR_NOISE_DF = 2


def _key(value: Any) -> str:
    """Choices as text: floats as written in PARAMETERS ('-6.0'), strings as they are."""
    return repr(float(value)) if isinstance(value, (int, float)) else str(value)


FEATURES = [f"{parameter}={_key(value)}" for parameter, values in PARAMETERS.items() for value in values]
_INDEX = {feature: i for i, feature in enumerate(FEATURES)}
_DIM = len(FEATURES) + 1  # the last weight is the intercept


def _choice(parameter: str, key: str) -> Any:
    for value in PARAMETERS[_known(parameter)]:
        if _key(value) == key:
            return value
    allowed = ", ".join(_key(v) for v in PARAMETERS[parameter])
    raise ProfileError(f"personalisation: {parameter} = {key!r} is not a choice (allowed: {allowed})")


def _known(parameter: str) -> str:
    if parameter not in PARAMETERS:
        raise ProfileError(f"personalisation: {parameter!r} is not a parameter (allowed: {', '.join(PARAMETERS)})")
    return parameter


def parse_choice(parameter: str, text: str) -> Any:
    """A choice given as text (``"dorian"``, ``"-6"``) -> its value; one-line ProfileError naming the choices."""
    if isinstance(PARAMETERS[_known(parameter)][0], float):
        try:
            text = _key(float(text))
        except ValueError:
            pass
    return _choice(parameter, text)


Finite = Annotated[float, Field(ge=-1e9, le=1e9)]


class BanditState(_Strict):
    """The stored form of a client's bandit (JSON), validated on load."""

    schema_version: int
    features: list[str]
    allowed: dict[str, Annotated[list[str], Field(min_length=1, max_length=16)]] = {}
    locked: dict[str, str] = {}
    precision: Annotated[list[Annotated[list[Finite], Field(min_length=_DIM, max_length=_DIM)]],
                         Field(min_length=_DIM, max_length=_DIM)]
    reward_sums: Annotated[list[Finite], Field(min_length=_DIM, max_length=_DIM)]
    reward_squares: Annotated[float, Field(ge=0, le=1e9)] = 0.0
    sessions: Annotated[int, Field(ge=0)] = 0


@dataclass
class MusicBandit:
    """One client's bandit. ``allowed[p]``: the choices the therapist allows for parameter p (default: all);
    ``locked[p]``: a fixed choice; ``precision`` (A) and ``reward_sums`` (b): the posterior of the weights,
    N(A^-1 b, noise variance x A^-1); ``reward_squares``: sum of squared rewards, for the noise variance."""

    allowed: dict[str, tuple[Any, ...]]
    locked: dict[str, Any]
    precision: np.ndarray
    reward_sums: np.ndarray
    reward_squares: float = 0.0
    sessions: int = 0

    @classmethod
    def new(cls) -> "MusicBandit":
        reward_sums = np.zeros(_DIM)
        reward_sums[-1] = 0.5 * PRIOR_PRECISION  # intercept prior mean 0.5
        return cls(allowed=dict(PARAMETERS), locked={}, precision=PRIOR_PRECISION * np.eye(_DIM),
                   reward_sums=reward_sums, reward_squares=0.25 * PRIOR_PRECISION)

    @staticmethod
    def features(choice: dict[str, Any]) -> np.ndarray:
        x = np.zeros(_DIM)
        x[-1] = 1.0
        for parameter, value in choice.items():
            x[_INDEX[f"{parameter}={_key(value)}"]] = 1.0
        return x

    def _posterior(self) -> tuple[np.ndarray, np.ndarray, float]:
        """(mean weights, covariance before noise scaling, noise variance)."""
        covariance = np.linalg.inv(self.precision)
        mean = covariance @ self.reward_sums
        residual = max(0.0, self.reward_squares - float(mean @ self.reward_sums))
        noise = (PRIOR_NOISE_DF * PRIOR_NOISE_SD ** 2 + residual) / (PRIOR_NOISE_DF + self.sessions)
        return mean, covariance, noise

    def choose(self, rng: np.random.Generator) -> dict[str, Any]:
        """The next session's parameters: locked values, else the allowed choice with the best sampled weight."""
        mean, covariance, noise = self._posterior()
        weights = rng.multivariate_normal(mean, noise * covariance, method="cholesky")
        return {
            parameter: self.locked[parameter] if parameter in self.locked
            else max(self.allowed[parameter], key=lambda v, p=parameter: weights[_INDEX[f"{p}={_key(v)}"]])
            for parameter in PARAMETERS
        }

    def update(self, choice: dict[str, Any], reward_value: float) -> None:
        """Learn from one session played with ``choice`` that earned ``reward_value`` (0-1)."""
        if not (0.0 <= reward_value <= 1.0):
            raise ValueError(f"reward {reward_value!r} is out of range (allowed 0-1)")
        x = self.features(choice)
        self.precision += np.outer(x, x)
        self.reward_sums += reward_value * x
        self.reward_squares += reward_value ** 2
        self.sessions += 1

    def lock(self, parameter: str, value: Any) -> None:
        self.locked[parameter] = _choice(parameter, _key(value))

    def unlock(self, parameter: str) -> None:
        self.locked.pop(_known(parameter), None)

    def allow(self, parameter: str, values: list[Any]) -> None:
        """Restrict ``parameter`` to ``values`` (at least one)."""
        if not values:
            raise ProfileError(f"personalisation: allow at least one {parameter} choice")
        self.allowed[parameter] = tuple(_choice(parameter, _key(v)) for v in values)

    def preferred(self) -> dict[str, Any]:
        """Per parameter, the allowed choice with the highest posterior mean weight (what has been learnt)."""
        mean = self._posterior()[0]
        return {p: max(values, key=lambda v, p=p: mean[_INDEX[f"{p}={_key(v)}"]]) for p, values in self.allowed.items()}

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": STATE_VERSION,
            "features": FEATURES,
            "allowed": {p: [_key(v) for v in values] for p, values in self.allowed.items()},
            "locked": {p: _key(v) for p, v in self.locked.items()},
            "precision": self.precision.tolist(),
            "reward_sums": self.reward_sums.tolist(),
            "reward_squares": self.reward_squares,
            "sessions": self.sessions,
        }

    @classmethod
    def from_json(cls, data: Any, what: str = "personalisation state") -> "MusicBandit":
        state = validate_document(BanditState, data, what)
        if state.features != FEATURES:
            raise ProfileError(f"{what}: features differ from this Heartsong's parameters (start it afresh with "
                               "`heartsong client tune CLIENT --reset`)")
        return cls(
            allowed=dict(PARAMETERS) | {p: tuple(_choice(p, k) for k in keys) for p, keys in state.allowed.items()},
            locked={p: _choice(p, k) for p, k in state.locked.items()},
            precision=np.array(state.precision), reward_sums=np.array(state.reward_sums),
            reward_squares=state.reward_squares, sessions=state.sessions,
        )


@dataclass(frozen=True)
class SessionResponse:
    """What one session did for the listener; None where not known."""

    rating: int | None = None  # 1-5
    hr_change_bpm: float | None = None  # end - start of the session (negative: heart rate fell)
    rmssd_change_ms: float | None = None  # end - start
    adherence: float | None = None  # 0-1: how closely breathing followed the guide
    coherence: float | None = None  # 0-1: share of HRV power in the coherence peak, when measured


def reward(response: SessionResponse) -> float | None:
    """The 0-1 reward of a session (module doc), or None when nothing about it is known."""
    parts = {}
    if response.rating is not None:
        parts["rating"] = (response.rating - 1) / 4.0
    if response.hr_change_bpm is not None:
        parts["hr_change"] = 0.5 - response.hr_change_bpm / HR_CHANGE_FULL_SCALE_BPM
    if response.rmssd_change_ms is not None:
        parts["rmssd_change"] = 0.5 + response.rmssd_change_ms / RMSSD_CHANGE_FULL_SCALE_MS
    if response.adherence is not None:
        parts["adherence"] = response.adherence
    if response.coherence is not None:
        parts["coherence"] = response.coherence
    parts = {k: min(1.0, max(0.0, v)) for k, v in parts.items() if math.isfinite(v)}
    if not parts:
        return None
    total = sum(REWARD_WEIGHTS[k] for k in parts)
    return sum(REWARD_WEIGHTS[k] * v for k, v in parts.items()) / total


def apply_choice(protocol: Protocol, choice: dict[str, Any]) -> Protocol:
    """``protocol`` played with the bandit's ``choice`` (every phase); values stay within the schema's ranges and
    the protocol's limits (its minimum tempo still holds)."""
    data = protocol.model_dump()
    for phase in data["phases"]:
        if "mode" in choice:
            phase["mode"] = choice["mode"]
        if "brightness" in choice:
            phase["brightness"] = choice["brightness"]
        if "density_scale" in choice:
            phase["density"] = min(4.0, max(0.25, phase["density"] * choice["density_scale"]))
        if "palette" in choice:
            phase["palette"] = ["pad"] if choice["palette"] == "pad" else ["pad", choice["palette"]]
        if "tempo_offset_bpm" in choice:
            key = "bpm" if phase["tempo"]["kind"] == "absolute" else "floor_bpm"
            phase["tempo"][key] = min(TEMPO_RANGE[1], max(TEMPO_RANGE[0], phase["tempo"][key] + choice["tempo_offset_bpm"]))
    return validate_document(Protocol, data, f"protocol {protocol.name} personalised")
