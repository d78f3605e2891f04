"""HRV and artifact correction against real NN series shipped in PyPI packages, golden values and neurokit2."""
import numpy as np
import pytest

from biosignals import hrv
from biosignals.artifacts import correct_rr, detect_artifacts
from estimator_data import hrv_analysis_nn, pyhrv_nni


def test_time_domain_matches_hrv_analysis_golden_values():
    values = hrv.hrv_time(hrv_analysis_nn())
    # golden numbers from hrv-analysis 1.0.6 tests/test_extract_features_methods.py
    assert values["hrv_rmssd"] == pytest.approx(19.519400785039664, rel=1e-12)
    assert values["hrv_sdnn"] == pytest.approx(43.113074968427306, rel=1e-12)
    assert values["hrv_mean_hr"] == pytest.approx(83.84733227281252, rel=1e-12)
    assert values["hrv_pnn50"] == pytest.approx(2.4024024024024024, rel=1e-12)


def test_time_domain_matches_neurokit2():
    nk = pytest.importorskip("neurokit2")
    nn = pyhrv_nni("Short")
    peaks = np.concatenate([[0], np.cumsum(nn)]).astype(int)
    ref = nk.hrv_time(peaks, sampling_rate=1000).iloc[0]
    assert hrv.hrv_rmssd(nn) == pytest.approx(ref["HRV_RMSSD"], rel=1e-9)
    assert hrv.hrv_sdnn(nn) == pytest.approx(ref["HRV_SDNN"], rel=1e-9)
    assert hrv.hrv_pnn50(nn) == pytest.approx(ref["HRV_pNN50"], abs=0.5)  # nk divides by intervals, we by differences


def test_lf_hf_agrees_with_neurokit2_within_peer_spread():
    nk = pytest.importorskip("neurokit2")
    nn = pyhrv_nni("Short")
    ours = hrv.hrv_frequency(nn)
    peaks = np.concatenate([[0], np.cumsum(nn)]).astype(int)
    ref = nk.hrv_frequency(peaks, sampling_rate=1000, psd_method="welch", interpolation_rate=4).iloc[0]
    assert ours["hrv_lf_hf"] == pytest.approx(ref["HRV_LFHF"], rel=0.35)  # peers differ by up to ~35 %


def test_frequency_bands_of_pure_rhythms():
    t = np.arange(0, 300, 0.8)
    lf = hrv.hrv_frequency(800 + 40 * np.sin(2 * np.pi * 0.1 * t))
    hf = hrv.hrv_frequency(800 + 40 * np.sin(2 * np.pi * 0.25 * t))
    assert lf["hrv_lf_hf"] > 50 and hf["hrv_lf_hf"] < 0.02
    # a 40 ms sine has variance 800 ms^2; RR-axis warping moves a little of it out of the band
    assert lf["hrv_lf"] == pytest.approx(800, rel=0.15)


def test_coherence_high_for_slow_breathing_low_for_noise():
    rng = np.random.default_rng(0)
    t = np.arange(0, 90, 0.85)
    coherent = hrv.hrv_coherence(850 + 60 * np.sin(2 * np.pi * 0.1 * t) + rng.normal(0, 5, len(t)))
    noisy = hrv.hrv_coherence(850 + rng.normal(0, 30, len(t)))
    assert coherent.peak_hz == pytest.approx(0.1, abs=0.01) and coherent.hrv_coherence > 5
    assert noisy.hrv_coherence < 1
    with pytest.raises(ValueError, match="64 s"):
        hrv.hrv_coherence(np.full(50, 850.0))


def inject(nn, rng, n_each=20):
    """Ectopic (premature + compensatory pause), missed (two merged) and extra (one split) beats, spaced 25 apart."""
    positions = rng.choice(np.arange(20, len(nn) - 20, 25), 3 * n_each, replace=False)
    kinds = dict(zip(positions, rng.permutation(["ectopic", "missed", "extra"] * n_each)))
    out, truth = [], []
    for i, v in enumerate(nn):
        kind = kinds.get(i)
        if kind == "ectopic":
            premature = out[-1] * rng.uniform(0.6, 0.8)
            out.append(v + out[-1] - premature)
            out[-2] = premature
            truth.append(len(out) - 1)
        elif kind == "missed":
            out[-1] += v
            truth.append(len(out) - 1)
        elif kind == "extra":
            f = rng.uniform(0.3, 0.7)
            out += [v * f, v * (1 - f)]
            truth.append(len(out) - 2)
        else:
            out.append(v)
    return np.array(out), truth


def injection_scores(nn, seed):
    """F1 of detection (+-1 beat), excluding detections at irregularities already in the real series (+-1.5 s)."""
    rr, truth = inject(nn, np.random.default_rng(seed))
    before = np.cumsum(nn)[[e.index for e in detect_artifacts(nn)]] / 1000.0
    found = [e.index for e in detect_artifacts(rr)]
    t_rr = np.cumsum(rr) / 1000.0
    matched = set()
    for p in truth:
        hit = [d for d in found if abs(d - p) <= 1 and d not in matched]
        if hit:
            matched.add(hit[0])
    pre_existing = [d for d in found if d not in matched and len(before) and np.min(np.abs(before - t_rr[d])) < 1.5]
    tp = len(matched)
    fp = len(found) - tp - len(pre_existing)
    fn = len(truth) - tp
    return 2 * tp / (2 * tp + fp + fn), rr


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_injected_artifacts_are_found_and_corrected(seed):
    nn = pyhrv_nni("Long")[:1600]
    f1, rr = injection_scores(nn, seed)
    assert f1 >= 0.95
    true_rmssd = hrv.hrv_rmssd(nn)
    assert hrv.hrv_rmssd(rr) > 2 * true_rmssd  # the damage is large
    assert hrv.hrv_rmssd(correct_rr(rr).rr_ms) == pytest.approx(true_rmssd, rel=0.05)


def test_each_artifact_kind_is_classified_and_fixed():
    rng = np.random.default_rng(5)
    base = 800 + 30 * np.sin(2 * np.pi * np.arange(200) * 0.8 * 0.25) + rng.normal(0, 5, 200)
    cases = {"ectopic": (lambda r: np.concatenate([r[:100], [0.7 * r[100], r[101] + 0.3 * r[100]], r[102:]])),
             "missed": (lambda r: np.concatenate([r[:100], [r[100] + r[101]], r[102:]])),
             "extra": (lambda r: np.concatenate([r[:100], [0.4 * r[100], 0.6 * r[100]], r[101:]])),
             "longshort": (lambda r: np.concatenate([r[:100], [1.4 * r[100]], r[101:]]))}
    for kind, damage in cases.items():
        result = correct_rr(damage(base))
        assert [e.kind for e in result.events] == [kind]
        assert len(result.rr_ms) == len(base)
        assert np.abs(result.rr_ms - base).max() < (0.45 * base[100] if kind == "longshort" else 0.35 * base[100])
        assert result.rr_ms.sum() == pytest.approx(base.sum(), rel=0.001 if kind != "longshort" else 0.01)
