"""Hostile input and security (issue 8): fuzzing of the loaders not fuzzed elsewhere, checkpoints that would run code,
data never executed, health data readable by the user alone, and no network connection.

Already fuzzed elsewhere (not repeated here): Heart Rate Measurement packets (test_biosignals_heart_rate_measurement,
test_ble_hrm_bumble), PMD frames and control-point answers (test_ble_pmd), recordings (test_ble_replay), protocol
files (test_therapy_schema). Fuzzed here: bundles, client profiles, playlists, session files given to `analyze`,
model checkpoints (torch and NumPy).
"""
from __future__ import annotations

import ast
import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from biosignals.sources.base import SensorError
from generators.model.numpy_infer import NumpyMelodyGRU
from generators.model.train import load_checkpoint
from therapy_profiles import ProfileError
from therapy_profiles.schema import load_client_profile, load_playlist
from wellness_app.analyze import analyze_recording
from wellness_app.bundles import BUNDLE_FORMAT, read_bundle

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("biosignals", "generators", "therapy_profiles", "wellness_app")
ENTRY_POINT = "import sys; from wellness_app.cli import main; sys.exit(main(sys.argv[1:]))"  # as `heartsong`
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
bundle_like = st.fixed_dictionaries(
    {"format": st.just(BUNDLE_FORMAT) | st.text(max_size=20)},
    optional={"client": json_values, "playlist": json_values, "protocols": json_values, "extra": json_values},
).map(lambda d: json.dumps(d).encode())
any_bytes = st.binary(max_size=300) | st.text(max_size=300).map(str.encode)


def _one_line(error: Exception) -> None:
    assert str(error) and "\n" not in str(error), repr(error)


@FUZZ
@given(content=bundle_like | any_bytes)
def test_bundles_give_a_bundle_or_one_profile_error_line(tmp_path, content):
    path = tmp_path / "bundle.json"
    path.write_bytes(content)
    try:
        read_bundle(path)
    except ProfileError as error:
        _one_line(error)


@FUZZ
@given(content=any_bytes | json_values.map(lambda v: json.dumps({"schema_version": 1, "x": v}).encode()),
       loader=st.sampled_from([load_client_profile, load_playlist]), suffix=st.sampled_from([".toml", ".json"]))
def test_client_profiles_and_playlists_give_a_document_or_one_profile_error_line(tmp_path, content, loader, suffix):
    path = tmp_path / f"doc{suffix}"
    path.write_bytes(content)
    try:
        loader(path)
    except ProfileError as error:
        _one_line(error)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=any_bytes | st.lists(st.fixed_dictionaries({"t_s": json_values, "rr_raw": json_values}), max_size=5)
       .map(lambda beats: json.dumps({"format": "heartsong-session/1", "beats": beats}).encode()))
def test_analyze_refuses_hostile_session_files_with_a_value_error(tmp_path, content):
    path = tmp_path / "session.json"
    path.write_bytes(content)
    try:
        analyze_recording(path, tmp_path / "chart.png")
    except (ValueError, SensorError) as error:  # ValueError includes UnicodeDecodeError and JSONDecodeError
        _one_line(error)


def test_analyze_of_a_hostile_file_is_one_line_and_exit_2(tmp_path):
    path = tmp_path / "session.json"
    path.write_bytes(b"\x00\xffnot a session")
    result = subprocess.run([sys.executable, "-c", ENTRY_POINT, "analyze", str(path)], capture_output=True,
                            text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert str(path) in result.stderr and "heartsong record" in result.stderr


class _RunsCode:
    """Unpickling this would call ``os.system``: the classic malicious checkpoint."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path):
    marker, path = tmp_path / "pwned", tmp_path / "evil.pt"
    torch.save({"model": _RunsCode(marker), "vocab": [], "config": {}}, path)
    with pytest.raises(Exception, match="Weights only load failed|Unsupported global"):
        load_checkpoint(path)
    assert not marker.exists(), "torch.load(weights_only=True) must never call os.system"


def test_numpy_weights_refuse_pickled_objects(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, meta=np.array([_RunsCode(tmp_path / "pwned")], dtype=object))
    with pytest.raises(ValueError, match="allow_pickle=False"):
        NumpyMelodyGRU(path)
    assert not (tmp_path / "pwned").exists()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=400))
def test_random_checkpoint_bytes_raise_and_never_crash(tmp_path, content):
    path = tmp_path / "fuzz.pt"
    path.write_bytes(content)
    with pytest.raises(Exception):  # torch raises RuntimeError or UnpicklingError; the process must survive
        load_checkpoint(path)


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else ""
            yield node, owner, name


def test_data_files_are_never_executed():
    """No code path evaluates data: no eval/exec/compile, no pickle/marshal/shelve/yaml loading, torch.load only
    with weights_only=True, np.load only with allow_pickle=False (bundles, profiles, recordings and sessions are
    parsed with json/tomllib and validated by pydantic)."""
    offences = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node, owner, name in _calls(ast.parse(path.read_text(), str(path))):
                keywords = {k.arg: k.value for k in node.keywords}
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                if not owner and name in {"eval", "exec", "compile", "__import__"}:
                    offences.append(f"{where} {name}()")
                elif owner in {"pickle", "marshal", "shelve", "dill", "yaml", "cloudpickle"} and name.startswith("load"):
                    offences.append(f"{where} {owner}.{name}()")
                elif owner == "torch" and name == "load" and not (
                        isinstance(keywords.get("weights_only"), ast.Constant) and keywords["weights_only"].value is True):
                    offences.append(f"{where} torch.load without weights_only=True")
                elif owner == "np" and name == "load" and not (
                        isinstance(keywords.get("allow_pickle"), ast.Constant) and keywords["allow_pickle"].value is False):
                    offences.append(f"{where} np.load without allow_pickle=False")
    assert not offences, offences


def test_health_data_is_readable_by_the_user_alone(tmp_path):
    """A session (session.json, .wav, .mid, the database) and a raw recording, made through the CLI."""
    data_dir = Path(os.environ["HEARTSONG_DATA_DIR"])
    out, recording = tmp_path / "s", tmp_path / "rec" / "strap.jsonl"
    recording.parent.mkdir()
    for args in (["session", "--protocol", "coherent-6", "--minutes", "0.5", "--offline", "--synth", "builtin",
                  "--out", str(out)],
                 ["record", "--sensor", "virtual:hrs", "--minutes", "0.05", "--out", str(recording)]):
        result = subprocess.run([sys.executable, "-m", "wellness_app.cli", *args], capture_output=True, text=True,
                                timeout=120, cwd=ROOT)
        assert result.returncode == 0, result.stderr
    files = [out / "session.json", out / "session.wav", out / "session.mid", recording,
             *sorted(data_dir.glob("heartsong.sqlite3*"))]
    assert len(files) >= 5
    modes = {str(f.relative_to(f.parents[1])): oct(stat.S_IMODE(f.stat().st_mode)) for f in files}
    assert set(modes.values()) == {"0o600"}, modes
    assert stat.S_IMODE(out.stat().st_mode) == 0o700 and stat.S_IMODE(data_dir.stat().st_mode) == 0o700


NETWORK_GUARD = textwrap.dedent("""
    import socket, sys
    attempts = []
    def local(address):
        if isinstance(address, (str, bytes)):  # AF_UNIX path (JACK, D-Bus)
            return True
        host = address[0] if isinstance(address, tuple) and address else ""
        return host in ("127.0.0.1", "::1", "localhost", "")
    def guard(event, args):
        if event == "socket.connect" and not local(args[1]):
            attempts.append(f"{event} {args[1]}")
            raise PermissionError(f"network guard: {event} {args[1]}")
        if event in ("socket.getaddrinfo", "socket.gethostbyname") and args and not local((args[0],)):
            attempts.append(f"{event} {args[0]}")
            raise PermissionError(f"network guard: {event} {args[0]}")
    sys.addaudithook(guard)
    from wellness_app.cli import main
    code = main(sys.argv[1:])
    print("NETWORK ATTEMPTS:", attempts)
    sys.exit(code)
""")


def test_an_offline_session_opens_no_network_connection(tmp_path):
    """An audit hook rejects and logs every connect to, or name lookup of, a non-local address."""
    result = subprocess.run([sys.executable, "-c", NETWORK_GUARD, "session", "--protocol", "coherent-6", "--minutes",
                             "0.5", "--offline", "--out", str(tmp_path / "s")], capture_output=True, text=True,
                            timeout=120, cwd=ROOT)
    assert "NETWORK ATTEMPTS: []" in result.stdout, result.stdout[-500:] + result.stderr[-2000:]
    assert result.returncode == 0, result.stderr
