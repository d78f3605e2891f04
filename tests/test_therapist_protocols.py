"""A therapist's own protocols in the store (what the app's protocol editor saves): create from a built-in, edit,
rename, delete; names that would hide a built-in or another protocol, renames and deletes that would break a
playlist are refused in one line; a stored protocol can be played by its file name."""
from __future__ import annotations

import pytest

from therapy_profiles import SCHEMA_VERSION, load_protocol
from wellness_app.errors import TherapistError
from wellness_app.playlists import custom_protocols, delete_custom_protocol, entry_protocol, get_playlist, save_custom_protocol
from wellness_app.session import SessionOptions, build_engine
from wellness_app.storage import DB_NAME, Store


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / DB_NAME) as opened:
        yield opened


def calm(name: str = "calm-5", rate: float = 5.0):
    base = load_protocol("coherent-6")
    phases = [p.model_copy(update={"breath_rate_bpm": rate}) if p.breath_rate_bpm else p for p in base.phases]
    return base.model_copy(update={"name": name, "phases": phases})


def use_in_playlist(store: Store, protocol_file: str) -> None:
    with store.transaction() as db:
        Store.put_document(db, "playlists", "evening", {"schema_version": SCHEMA_VERSION, "name": "evening",
                                                        "sessions": [{"protocol": protocol_file}]})


def test_save_edit_rename_delete(store):
    assert save_custom_protocol(store, calm()) == "calm-5.json"
    assert custom_protocols(store)["calm-5.json"].phases[1].breath_rate_bpm == 5.0
    # editing in place replaces it
    save_custom_protocol(store, calm(rate=5.5), replacing="calm-5.json")
    assert custom_protocols(store)["calm-5.json"].phases[1].breath_rate_bpm == 5.5
    # an unused protocol may be renamed: the old name is gone
    assert save_custom_protocol(store, calm("calm-55", 5.5), replacing="calm-5.json") == "calm-55.json"
    assert sorted(custom_protocols(store)) == ["calm-55.json"]
    delete_custom_protocol(store, "calm-55.json")
    assert custom_protocols(store) == {}


@pytest.mark.parametrize("protocol, replacing, expected", [
    (calm("coherent-6"), None, "'coherent-6' is a built-in protocol: give yours another name, e.g. coherent-6-mine"),
    (calm("calm-5"), None, "a protocol named 'calm-5' is already stored: pick another name, or edit that one"),
])
def test_names_that_would_hide_another_protocol_are_refused(store, protocol, replacing, expected):
    save_custom_protocol(store, calm())
    with pytest.raises(TherapistError) as error:
        save_custom_protocol(store, protocol, replacing=replacing)
    assert str(error.value) == expected


def test_a_protocol_a_playlist_uses_keeps_its_name_and_stays(store):
    save_custom_protocol(store, calm())
    use_in_playlist(store, "calm-5.json")
    with pytest.raises(TherapistError, match="used by playlist 'evening': keep its name"):
        save_custom_protocol(store, calm("calm-6"), replacing="calm-5.json")
    with pytest.raises(TherapistError, match="used by playlist 'evening': take it out"):
        delete_custom_protocol(store, "calm-5.json")
    assert sorted(custom_protocols(store)) == ["calm-5.json"]
    save_custom_protocol(store, calm(rate=4.5), replacing="calm-5.json")  # edits reach the playlist
    playlist = get_playlist(store, "evening")
    protocol = entry_protocol(playlist.sessions[0], custom_protocols(store))
    assert protocol.phases[1].breath_rate_bpm == 4.5


def test_a_stored_protocol_plays_by_its_file_name(store, tmp_path, monkeypatch):
    monkeypatch.setenv("HEARTSONG_DATA_DIR", str(tmp_path))
    save_custom_protocol(store, calm(rate=4.5))
    engine, _notices = build_engine(SessionOptions(protocol="calm-5.json", minutes=1, out_dir=tmp_path / "s",
                                                   offline=True, synth="builtin", generator="rules"))
    assert engine.record.protocol["name"] == "calm-5"
    assert {p["breath_rate_bpm"] for p in engine.record.protocol["phases"]} == {None, 4.5}


def test_protocols_lists_stored_ones_and_a_missing_one_is_one_line(store, tmp_path, monkeypatch, capsys):
    from wellness_app import cli

    monkeypatch.setenv("HEARTSONG_DATA_DIR", str(tmp_path))
    save_custom_protocol(store, calm())
    assert cli.main(["protocols"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert names[-1] == "calm-5.json" and "coherent-6" in names
    assert cli.main(["session", "--protocol", "calm-6.json", "--minutes", "1", "--offline",
                     "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["heartsong: error: protocol 'calm-6.json' is neither a file here nor a stored protocol: see "
                   "`heartsong protocols` for the built-in and stored ones, or give the file's path"], err
