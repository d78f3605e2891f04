"""Protocol, profile and playlist files: built-ins load, bad or hostile files fail with one precise line."""
from __future__ import annotations

import json
import tomllib
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from therapy_profiles import (
    MAX_FILE_BYTES,
    ProfileError,
    Protocol,
    builtin_protocol_names,
    builtin_protocols,
    load_client_profile,
    load_playlist,
    load_protocol,
)

EXPECTED_BUILTINS = {
    "coherent-6", "hr-winddown", "box-breathing", "4-7-8", "extended-exhale", "sleep-onset", "resonance-assessment",
}


def builtin_data(name: str) -> dict:
    text = (resources.files("therapy_profiles") / "protocols" / f"{name}.toml").read_text("utf-8")
    return tomllib.loads(text)


def write_toml(path: Path, data: dict) -> Path:
    """A tiny TOML writer for the shapes protocols use (tables, arrays of tables, inline scalars)."""
    def value(v):
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return json.dumps(v)

    lines = [f"{k} = {value(v)}" for k, v in data.items() if not isinstance(v, (dict, list)) or k == "palette"]
    for key, v in data.items():
        if isinstance(v, dict):
            lines += [f"[{key}]"] + [f"{k} = {value(x)}" for k, x in v.items()]
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            for item in v:
                lines += [f"[[{key}]]"] + [f"{k} = {value(x)}" for k, x in item.items()]
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


def test_every_builtin_loads_with_description_and_source():
    protocols = builtin_protocols()
    assert set(protocols) == EXPECTED_BUILTINS
    for name, protocol in protocols.items():
        assert protocol.name == name
        assert protocol.description and protocol.source
        assert 60 <= protocol.total_duration_s <= 3600
        comment = (resources.files("therapy_profiles") / "protocols" / f"{name}.toml").read_text("utf-8")
        assert comment.startswith("#") and "Source:" in comment


def test_builtins_match_the_published_practice():
    coherent = load_protocol("coherent-6")
    guided = [p for p in coherent.phases if p.breath_rate_bpm is not None]
    assert {p.breath_rate_bpm for p in guided} == {6.0}
    assert all((p.breath_ratio.inhale, p.breath_ratio.exhale) == (4, 6) for p in guided)
    assert coherent.phases[0].breath_rate_bpm is None  # settle: the guide meets the listener
    assessment = load_protocol("resonance-assessment")
    steps = [(p.breath_rate_bpm, p.duration_s) for p in assessment.phases if p.name.startswith("rate-")]
    assert steps == [(6.5, 120), (6.0, 120), (5.5, 120), (5.0, 120), (4.5, 120)]
    box = load_protocol("box-breathing").phases[2].breath_ratio
    assert (box.inhale, box.hold_in, box.exhale, box.hold_out) == (4, 4, 4, 4) and box.inhale_fraction == 0.5
    weil = load_protocol("4-7-8").phases[2]
    assert 60 / weil.breath_rate_bpm == pytest.approx(19, abs=0.01)  # 4 + 7 + 8 counts of one second
    winddown = load_protocol("hr-winddown")
    assert all(p.tempo.kind == "heart-rate" for p in winddown.phases)


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: d["phases"][1].__setitem__("breath_rate_bpm", 40),
     "protocol file coherent.toml: phases[1].breath_rate_bpm = 40 is out of range (allowed 3-20 breaths/min)"),
    (lambda d: d["phases"][0].__setitem__("duration_s", "long"),
     "protocol file coherent.toml: phases[0].duration_s = 'long' must be a number"),
    (lambda d: d["phases"][2].__setitem__("volume", 1.5),
     "protocol file coherent.toml: phases[2].volume = 1.5 is out of range (allowed 0-1 (linear level))"),
    (lambda d: d["phases"][1]["tempo"].__setitem__("bpm", 200),
     "protocol file coherent.toml: phases[1].tempo.bpm = 200 is out of range (allowed 40-120 beats/min)"),
    (lambda d: d["phases"][0].__setitem__("mode", "locrian"),
     "protocol file coherent.toml: phases[0].mode = 'locrian' is not allowed (choose one of major, minor, dorian, "
     "lydian, mixolydian, pentatonic-major, pentatonic-minor)"),
    (lambda d: d.__setitem__("schema_version", 7),
     "protocol file coherent.toml: schema_version = 7 is not supported (this Heartsong reads schema_version 1; "
     "upgrade Heartsong or convert the file)"),
    (lambda d: d.pop("schema_version"),
     "protocol file coherent.toml: schema_version is missing (add schema_version = 1)"),
    (lambda d: d["phases"][0].__setitem__("breath_ratio", {"inhale": 1, "exhale": 20}),
     "protocol file coherent.toml: phases[0].breath_ratio gives an inhale fraction of 0.05, out of range "
     "(allowed 0.15-0.85 of the breath)"),
    (lambda d: d["phases"][1].__setitem__("tempo", {"kind": "swing"}),
     "protocol file coherent.toml: phases[1].tempo.kind must be one of 'absolute', 'heart-rate'"),
    (lambda d: d["phases"][1].pop("duration_s"), "protocol file coherent.toml: phases[1].duration_s is missing"),
    (lambda d: d["phases"][1].__setitem__("name", "settle"),
     "protocol file coherent.toml: has two phases named 'settle' (phase names must be unique)"),
    (lambda d: d["phases"][3].__setitem__("register_midi", 30),
     "protocol file coherent.toml: phases[3].register_midi = 30 is out of range (allowed 48-84 (MIDI note))"),
    (lambda d: d.__setitem__("tonic", 2.0),
     "protocol file coherent.toml: tonic = 2.0 must be a whole number"),
])
def test_bad_field_gives_one_line_naming_field_and_range(tmp_path, mutate, expected):
    data = builtin_data("coherent-6")
    mutate(data)
    path = write_toml(tmp_path / "coherent.toml", data)
    with pytest.raises(ProfileError) as caught:
        load_protocol(path)
    assert str(caught.value) == expected


def test_extra_field_lists_the_allowed_ones(tmp_path):
    data = builtin_data("coherent-6")
    data["phases"][0]["colour"] = "blue"
    with pytest.raises(ProfileError, match=r"^protocol file c\.toml: phases\[0\]\.colour is not a known field "
                                           r"\(allowed: name, title, duration_s, breath_rate_bpm, .*palette\)$"):
        load_protocol(write_toml(tmp_path / "c.toml", data))
    data = builtin_data("coherent-6")
    data["phases"][1]["tempo"]["swing"] = 0.6
    with pytest.raises(ProfileError, match=r"phases\[1\]\.tempo\.swing is not a known field \(allowed: kind, bpm\)"):
        load_protocol(write_toml(tmp_path / "c.toml", data))
    data = builtin_data("hr-winddown")
    data["phases"][0]["tempo"]["bpm"] = 60
    with pytest.raises(ProfileError, match=r"phases\[0\]\.tempo\.bpm is not a known field "
                                           r"\(allowed: kind, descend_bpm, floor_bpm\)"):
        load_protocol(write_toml(tmp_path / "c.toml", data))


def test_boolean_is_not_a_number(tmp_path):
    data = builtin_data("coherent-6")
    data["phases"][0]["density"] = True
    with pytest.raises(ProfileError, match=r"phases\[0\]\.density = True must be a number"):
        load_protocol(write_toml(tmp_path / "c.toml", data))


def test_huge_file_is_refused_before_parsing(tmp_path):
    path = tmp_path / "huge.toml"
    path.write_bytes(b"= not toml at all\n" * (MAX_FILE_BYTES // 10))  # invalid TOML: only the size check can name it
    with pytest.raises(ProfileError, match=r"^protocol file huge\.toml is larger than the 256 KiB limit"):
        load_protocol(path)


@pytest.mark.parametrize("name, content, message", [
    ("bad.toml", b"schema_version = 1\nname = \n", r"^protocol file bad\.toml is not valid TOML \(.*line 2"),
    ("bad.json", b'{"schema_version": 1,', r"^protocol file bad\.json is not valid JSON \(.* at line 1"),
    ("nan.json", b'{"schema_version": 1, "x": NaN}', r"is not valid JSON \(NaN is not a number JSON allows\)"),
    ("deep.json", b"[" * 100_000 + b"]" * 100_000, r"^protocol file deep\.json is nested too deeply$"),
    ("list.json", b"[1, 2]", r"the top level must be a table of fields, not list$"),
    ("latin1.toml", "name = 'caf\u00e9'".encode("latin-1"), r"is not UTF-8 text \(bad byte at offset 11\)$"),
    ("notes.txt", b"", r"unsupported file type '\.txt' \(use \.toml or \.json\)$"),
])
def test_malformed_files(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ProfileError, match=message) as caught:
        load_protocol(path)
    assert "\n" not in str(caught.value)


def test_unknown_name_and_missing_file():
    names = ", ".join(sorted(EXPECTED_BUILTINS))
    with pytest.raises(ProfileError) as caught:
        load_protocol("foo")
    assert str(caught.value) == f"unknown protocol 'foo': choose one of {names} (see `heartsong protocols`)"
    with pytest.raises(ProfileError, match=r"^protocol file nowhere\.toml not found"):
        load_protocol("nowhere.toml")


def test_json_file_loads_the_same_protocol(tmp_path):
    original = load_protocol("hr-winddown")
    path = tmp_path / "winddown.json"
    path.write_text(json.dumps(original.model_dump(mode="json")), "utf-8")
    assert load_protocol(path) == original


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_arbitrary_bytes_give_a_protocol_or_a_profile_error(tmp_path, content):
    path = tmp_path / "fuzz.toml"
    path.write_bytes(content)
    try:
        load_protocol(path)
    except ProfileError as error:
        assert "\n" not in str(error)


def test_scaled_to_keeps_every_phase_and_the_shape():
    original = load_protocol("coherent-6")
    demo = original.scaled_to(3)
    assert demo.total_duration_s == pytest.approx(180)
    assert [p.name for p in demo.phases] == [p.name for p in original.phases]
    for short, full in zip(demo.phases, original.phases):
        assert short.duration_s / full.duration_s == pytest.approx(180 / 1200)
    assert demo.ramp.guide_bpm_per_min == 4.0  # 1/min x 6.7, capped at the schema maximum
    assert demo.ramp.tempo_bpm_per_min == 12.0
    longer = original.scaled_to(40)
    assert longer.ramp == original.ramp  # lengthening never speeds the ramp up
    assert longer.total_duration_s == pytest.approx(2400)


CLIENT = """schema_version = 1
client_id = "c-0042"
display_name = "Client 42"
resonance_rate_bpm = 5.5
playlist = "evening"
[preferences]
modes = ["lydian", "major"]
[limits]
max_volume = 0.5
min_tempo_bpm = 50
"""

PLAYLIST = """schema_version = 1
name = "evening"
[schedule]
days = ["mon", "wed", "fri"]
time = "21:30"
[[sessions]]
protocol = "coherent-6"
overrides = { breath_rate_bpm = 5.5, max_volume = 0.5, minutes = 10 }
[[sessions]]
protocol = "mine.toml"
"""


def test_client_profile_and_playlist(tmp_path):
    profile = load_client_profile(write_text(tmp_path / "client.toml", CLIENT))
    assert profile.resonance_rate_bpm == 5.5 and profile.limits.max_volume == 0.5
    mine = builtin_data("extended-exhale") | {"name": "mine"}
    write_toml(tmp_path / "mine.toml", mine)
    playlist = load_playlist(write_text(tmp_path / "evening.toml", PLAYLIST))
    assert [s.protocol for s in playlist.sessions] == ["coherent-6", "mine.toml"]
    from therapy_profiles import protocol_for_entry

    personal = protocol_for_entry(playlist.sessions[0], tmp_path)
    assert {p.breath_rate_bpm for p in personal.phases} == {None, 5.5}
    assert personal.limits.max_volume == 0.5 and personal.total_duration_s == pytest.approx(600)


def test_playlist_imports_whole_or_not_at_all(tmp_path):
    bad = PLAYLIST.replace('protocol = "mine.toml"', 'protocol = "missing.toml"')
    with pytest.raises(ProfileError, match=r"^playlist file evening\.toml: sessions\[1\]\.protocol: protocol file "
                                           r"missing\.toml not found"):
        load_playlist(write_text(tmp_path / "evening.toml", bad))
    with pytest.raises(ProfileError, match=r"client_id = 'Bob Smith' is not allowed \(string should match pattern"):
        load_client_profile(write_text(tmp_path / "c.toml", CLIENT.replace("c-0042", "Bob Smith")))
    with pytest.raises(ProfileError, match=r"resonance_rate_bpm = 9 is out of range \(allowed 4-7.5 breaths/min\)"):
        load_client_profile(write_text(tmp_path / "c.toml", CLIENT.replace("5.5", "9")))


def write_text(path: Path, text: str) -> Path:
    path.write_text(text, "utf-8")
    return path


def test_builtin_names_are_the_files():
    assert builtin_protocol_names() == sorted(EXPECTED_BUILTINS)
    assert isinstance(load_protocol("4-7-8"), Protocol)
