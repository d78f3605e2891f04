"""Shared fixtures: a clocked virtual sound card (JACK's dummy driver), since this machine has none."""
import os

import pytest

from generators.dummy_sound_card import DummySoundCardError, dummy_sound_card


@pytest.fixture
def jack_server():
    """The name of a running JACK dummy server (a clocked virtual sound card); skips where JACK cannot run."""
    name = f"hs_test_{os.getpid()}"  # per test process: parallel runs on one machine must not share a server
    try:
        with dummy_sound_card(name):
            yield name
    except DummySoundCardError as error:
        pytest.skip(str(error))


@pytest.fixture(autouse=True)
def private_data_dir(tmp_path_factory, monkeypatch):
    """Sessions store into a temporary data directory, never the user's real one (subprocesses inherit it)."""
    monkeypatch.setenv("HEARTSONG_DATA_DIR", str(tmp_path_factory.mktemp("heartsong-data")))
