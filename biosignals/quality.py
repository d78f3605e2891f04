"""Signal quality: which inputs can be trusted now, as an overall score, named issues and per-source weights.

Rules (each issue names what failed; the estimator turns a weight of 0 into None values, never a guess):

- ``no_contact``: the strap reports no skin contact. Everything is untrusted (score 0, all weights 0).
- ``artifacts_high``: over ``ARTIFACT_WARN_PERCENT`` (5 %) of the last minute's beats were corrected (above
  5 % recordings are usually judged unreliable for HRV); RR-based weights fall linearly to 0 at
  ``ARTIFACT_MAX_PERCENT`` (20 %), where ``artifacts_severe`` replaces it and HRV values become None.
- ``acc_stuck_axis``: an ACC axis did not change over 5 s while another did (a sensor that stopped updating
  an axis, or a saturated one). One stuck axis halves the ACC weight (the other two are still used); two or
  more remove it.
- ``low_rsa``: the heart-rate swing at the breathing rhythm is under ``MIN_RSA_BPM`` (1 beat/min peak to
  trough): RR-derived breathing is not trusted (weight 0), HRV itself still is.
"""
from __future__ import annotations

from dataclasses import dataclass, field

ARTIFACT_WARN_PERCENT = 5.0
ARTIFACT_MAX_PERCENT = 20.0
MIN_RSA_BPM = 1.0


@dataclass(frozen=True, slots=True)
class SignalQuality:
    """Overall score 0-1, the issues found, whether HRV may be reported, and source weights 0-1 for fusion."""

    score: float
    issues: tuple[str, ...]
    hrv_ok: bool
    weights: dict[str, float] = field(default_factory=dict)


def assess_quality(
    *,
    contact: bool | None,
    artifact_percent: float | None,
    stuck_axes: tuple[int, ...] = (),
    rsa_amplitude_bpm: float | None = None,
) -> SignalQuality:
    """Judge the inputs; ``None`` means unknown (not a failure). See the module docstring for the rules."""
    if contact is False:
        return SignalQuality(0.0, ("no_contact",), False, {"rr": 0.0, "acc": 0.0, "ecg": 0.0})
    issues = []
    rr_weight = 1.0
    hrv_ok = True
    if artifact_percent is not None and artifact_percent > ARTIFACT_WARN_PERCENT:
        if artifact_percent >= ARTIFACT_MAX_PERCENT:
            issues.append("artifacts_severe")
            rr_weight, hrv_ok = 0.0, False
        else:
            issues.append("artifacts_high")
            rr_weight = 1.0 - (artifact_percent - ARTIFACT_WARN_PERCENT) / (ARTIFACT_MAX_PERCENT - ARTIFACT_WARN_PERCENT)
    acc_weight = 1.0
    if stuck_axes:
        issues.append("acc_stuck_axis")
        acc_weight = 0.5 if len(stuck_axes) == 1 else 0.0
    rr_breathing = rr_weight
    if rsa_amplitude_bpm is not None and rsa_amplitude_bpm < MIN_RSA_BPM:
        issues.append("low_rsa")
        rr_breathing = 0.0
    score = rr_weight * (0.5 + 0.5 * acc_weight if stuck_axes else 1.0)
    return SignalQuality(score, tuple(issues), hrv_ok, {"rr": rr_breathing, "acc": acc_weight, "ecg": rr_weight})
