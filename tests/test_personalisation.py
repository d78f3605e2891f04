"""The per-client bandit: simulated listeners with hidden preferences, locks, the reward, persistence, and
applying a choice to a real protocol."""
from __future__ import annotations

import json
import random
import statistics

import numpy as np
import pytest

from therapy_profiles import ProfileError, load_protocol
from therapy_profiles.personalisation import (
    PARAMETERS,
    MusicBandit,
    SessionResponse,
    apply_choice,
    parse_choice,
    reward,
)

SESSIONS = 100
SEEDS = 20


def simulated_listener(seed: int):
    """A listener with one hidden favourite per parameter (utility 1) and lukewarm feelings (0-0.5) about the
    rest; their rating, heart rate, RMSSD and breathing respond to the mean utility u, with noise."""
    rng = random.Random(seed)
    favourite = {p: rng.choice(values) for p, values in PARAMETERS.items()}
    liking = {p: {v: 1.0 if v == favourite[p] else rng.uniform(0.0, 0.5) for v in values}
              for p, values in PARAMETERS.items()}

    def respond(choice: dict, noise: random.Random) -> SessionResponse:
        u = statistics.fmean(liking[p][v] for p, v in choice.items())
        return SessionResponse(
            rating=min(5, max(1, round(1 + 4 * u + noise.gauss(0, 0.7)))),
            hr_change_bpm=2 - 8 * u + noise.gauss(0, 2),
            rmssd_change_ms=-3 + 10 * u + noise.gauss(0, 4),
            adherence=min(1.0, max(0.0, 0.5 + 0.4 * u + noise.gauss(0, 0.1))),
        )

    return favourite, respond


def play(bandit: MusicBandit, respond, seed: int, sessions: int) -> list[dict]:
    rng, noise = np.random.default_rng(seed), random.Random(seed)
    picks = []
    for _ in range(sessions):
        choice = bandit.choose(rng)
        bandit.update(choice, reward(respond(choice, noise)))
        picks.append(choice)
    return picks


def test_choices_converge_to_the_hidden_favourites():
    first, last = {p: [] for p in PARAMETERS}, {p: [] for p in PARAMETERS}
    for seed in range(SEEDS):
        favourite, respond = simulated_listener(seed)
        picks = play(MusicBandit.new(), respond, 1000 + seed, SESSIONS)
        for p in PARAMETERS:
            first[p].append(statistics.fmean(c[p] == favourite[p] for c in picks[:10]))
            last[p].append(statistics.fmean(c[p] == favourite[p] for c in picks[-10:]))
    share_first = {p: statistics.fmean(v) for p, v in first.items()}
    share_last = {p: statistics.fmean(v) for p, v in last.items()}
    print("favourite picked, sessions 1-10:", share_first, f"sessions {SESSIONS - 9}-{SESSIONS}:", share_last)
    for p in PARAMETERS:
        assert share_last[p] > 0.8, f"{p}: favourite in {share_last[p]:.0%} of the last 10 sessions"
        assert share_last[p] > share_first[p] + 0.2


def test_locked_and_allowed_choices_are_respected():
    favourite, respond = simulated_listener(7)
    bandit = MusicBandit.new()
    bandit.lock("mode", "dorian")
    bandit.allow("palette", ["pad", "harp"])
    picks = play(bandit, respond, 7, 25)
    assert {c["mode"] for c in picks} == {"dorian"}
    assert {c["palette"] for c in picks} <= {"pad", "harp"}
    bandit.unlock("mode")
    assert len({c["mode"] for c in play(bandit, respond, 8, 20)}) > 1, "unlocked: the bandit explores again"


def test_state_survives_json_and_keeps_choosing_the_same():
    _, respond = simulated_listener(3)
    bandit = MusicBandit.new()
    bandit.lock("brightness", 0.25)
    play(bandit, respond, 3, 15)
    text = json.dumps(bandit.to_json())
    again = MusicBandit.from_json(json.loads(text))
    assert again.locked == {"brightness": 0.25} and again.sessions == 15
    assert again.choose(np.random.default_rng(5)) == bandit.choose(np.random.default_rng(5))
    assert again.preferred() == bandit.preferred()


@pytest.mark.parametrize("change, expected", [
    (lambda s: s.update(schema_version=9), "schema_version = 9 is not supported"),
    (lambda s: s.update(locked={"mode": "jazz"}), "mode = 'jazz' is not a choice (allowed: major, minor"),
    (lambda s: s.update(locked={"volume": "1"}), "'volume' is not a parameter"),
    (lambda s: s.update(reward_sums=[0.0] * 3), "reward_sums"),
    (lambda s: s.update(precision="x"), "precision = 'x' must be a list"),
])
def test_hostile_state_is_one_clear_line(change, expected):
    state = MusicBandit.new().to_json()
    change(state)
    with pytest.raises(ProfileError) as error:
        MusicBandit.from_json(state)
    assert expected in str(error.value) and "\n" not in str(error.value)


def test_reward_maps_and_renormalises():
    assert reward(SessionResponse()) is None
    assert reward(SessionResponse(rating=5)) == 1.0
    assert reward(SessionResponse(rating=1)) == 0.0
    assert reward(SessionResponse(hr_change_bpm=-10.0)) == 1.0
    assert reward(SessionResponse(hr_change_bpm=0.0, rmssd_change_ms=0.0)) == pytest.approx(0.5)
    both = reward(SessionResponse(rating=5, hr_change_bpm=10.0))  # 0.4 x 1 + 0.2 x 0, over 0.6
    assert both == pytest.approx(0.4 / 0.6)
    assert reward(SessionResponse(rating=3, adherence=float("nan"))) == pytest.approx(0.5)


def test_apply_choice_to_a_real_protocol():
    protocol = load_protocol("coherent-6")
    choice = {"mode": "dorian", "tempo_offset_bpm": 6.0, "density_scale": 1.5, "brightness": 0.25, "palette": "harp"}
    personal = apply_choice(protocol, choice)
    for before, after in zip(protocol.phases, personal.phases):
        assert after.mode == "dorian" and after.brightness == 0.25 and after.palette == ["pad", "harp"]
        assert after.density == pytest.approx(min(4.0, before.density * 1.5))
        if before.tempo.kind == "absolute":
            assert after.tempo.bpm == pytest.approx(min(120.0, before.tempo.bpm + 6.0))
    assert parse_choice("tempo_offset_bpm", "-6") == -6.0
    with pytest.raises(ProfileError, match="allowed: -6.0, 0.0, 6.0"):
        parse_choice("tempo_offset_bpm", "5")
