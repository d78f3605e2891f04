"""Assembles a session from user options (protocol, sensor, generator, synth, output) and runs it."""
from __future__ import annotations

import asyncio
import contextlib
from dataclasses import asdict, dataclass
from pathlib import Path

from biosignals.sources import SensorError, SensorSource, open_source
from biosignals.sources.virtual import VirtualStrap
from generators.base import Generator
from generators.output import WavWriter, create_file
from generators.rules import RuleBasedGenerator
from generators.synth import open_synth
from therapy_profiles import ProfileError, Protocol, load_protocol
from therapy_profiles.schema import PlaylistEntry, validate_document
from therapy_profiles.policy import Policy
from wellness_app.engine import SessionEngine
from wellness_app.errors import TherapistError
from wellness_app.personalised import personalised_protocol
from wellness_app.record import SessionRecord
from wellness_app.storage import StorageError, open_store, private_folder

SAMPLE_RATE = 48000


class SessionSetupError(Exception):
    """A problem with the user's options; ``str()`` is one line naming the problem and the fix."""


@dataclass(frozen=True)
class SessionOptions:
    protocol: str = "coherent-6"
    minutes: float = 3.0
    out_dir: Path = Path("out/session")
    sensor: str = "virtual"
    generator: str = "model"
    synth: str = "auto"
    offline: bool = False
    seed: int = 1
    client_id: str | None = None  # the therapist's client this session is for (stored with the record)
    playlist_entry: PlaylistEntry | None = None  # with a client: the playlist entry played, with its overrides
    playlist: str | None = None  # with a client: the name of the playlist the entry comes from
    playlist_index: int | None = None  # and the entry's position in it (0 = first), so the next one follows


def prepare_out_dir(out_dir: Path) -> Path:
    """Create ``out_dir`` (0700, also when it existed) and prove it is writable before anything is recorded."""
    try:
        private_folder(out_dir)
        create_file(out_dir / ".heartsong-write-test").close()
        (out_dir / ".heartsong-write-test").unlink()
    except OSError as error:
        raise SessionSetupError(
            f"cannot write to output directory {out_dir} ({error.strerror or error}): choose another with --out"
        ) from None
    return out_dir


def open_sensor(options: SessionOptions) -> SensorSource:
    """``virtual``: the simulated strap, driven on the music clock (works offline and live); ``virtual:KIND``:
    a virtual strap in the Bluetooth lab, read through bleak; ``replay:FILE``: a recording; else a strap address."""
    if options.sensor == "virtual":
        return VirtualStrap(seed=options.seed)
    try:
        source = open_source(options.sensor, seed=options.seed)
    except SensorError as error:
        raise SessionSetupError(str(error)) from None
    if options.offline and not hasattr(source, "packets_until"):
        raise SessionSetupError(
            f"--offline needs a simulated sensor, not {options.sensor!r}: use --sensor virtual or replay:FILE, "
            "or drop --offline to play live"
        )
    return source


def _protocol_for(options: SessionOptions, store) -> tuple[Protocol, dict | None]:
    """The protocol scaled to the session length; for a client, with their overrides and the personalisation
    bandit's musical choice for this session (recorded, so the client's rating teaches the bandit)."""
    if options.client_id is None:
        return _named_protocol(options.protocol, store).scaled_to(options.minutes), None
    try:
        entry = options.playlist_entry or PlaylistEntry(protocol=options.protocol)
        protocol, choice = personalised_protocol(store, options.client_id, entry, explore=True, seed=options.seed)
    except TherapistError as error:
        raise SessionSetupError(str(error)) from None
    return protocol.scaled_to(options.minutes), choice


def _named_protocol(name: str, store) -> Protocol:
    """A protocol file (when ``name`` is an existing path), else a therapist's stored protocol by its file name
    (``calm-5.json``), else a built-in by name."""
    if not Path(name).exists():
        stored = store.get_document("protocols", name)
        if stored is not None:
            return validate_document(Protocol, stored, f"stored protocol {name}")
        if Path(name).suffix in (".json", ".toml"):
            raise ProfileError(f"protocol {name!r} is neither a file here nor a stored protocol: see `heartsong "
                               "protocols` for the built-in and stored ones, or give the file's path")
    return load_protocol(name)


def make_generator(kind: str, seed: int) -> Generator:
    """``model``: the learned melody model with NumPy inference (no torch import, ~0.2 s to load);
    ``model-torch``: the same weights on PyTorch; ``rules``: the rule-based baseline."""
    if kind == "rules":
        return RuleBasedGenerator(seed=seed)
    if kind in ("model", "model-torch"):
        from generators.model import ModelGenerator

        return ModelGenerator(seed=seed, backend="torch" if kind == "model-torch" else "numpy")
    raise SessionSetupError(f"unknown generator {kind!r}: use model, model-torch or rules")


def build_engine(options: SessionOptions, on_progress=None) -> tuple[SessionEngine, list[str]]:
    """All parts of a session, wired; returns the engine and one-line notices for the user."""
    if not 0 < options.minutes <= 240:  # also refuses NaN
        raise SessionSetupError(f"--minutes {options.minutes} is out of range: use a value above 0, up to 240")
    try:
        store = open_store()
    except StorageError as error:
        raise SessionSetupError(str(error)) from None
    try:
        protocol, personalisation = _protocol_for(options, store)
    except ProfileError as error:
        raise SessionSetupError(str(error)) from None
    source = open_sensor(options)
    out_dir = prepare_out_dir(options.out_dir)
    notices = []
    synth, notice = open_synth(options.synth, SAMPLE_RATE)
    if notice:
        notices.append(notice)
    record = SessionRecord(
        path=out_dir / "session.json",
        protocol=protocol.model_dump(mode="json"),
        settings={k: str(v) for k, v in asdict(options).items()} | {"synth_used": type(synth).__name__},
        store=store,
        client_id=options.client_id,
    )
    record.personalisation = personalisation
    engine = SessionEngine(
        source=source,
        policy=Policy(protocol, seed=options.seed),
        generator=make_generator(options.generator, options.seed),
        synth=synth,
        record=record,
        out_dir=out_dir,
        duration_s=options.minutes * 60.0,
        sample_rate=SAMPLE_RATE,
        on_progress=on_progress,
    )
    return engine, notices


def run_offline(engine: SessionEngine) -> None:
    with WavWriter(engine.out_dir / "session.wav", engine.sample_rate) as wav:
        try:
            engine.run_offline(wav)
        except OSError as error:  # an output file cannot be written (disk full): end the record as incomplete
            engine.record.add_event(engine.rendered_frames / engine.sample_rate, "output_error", str(error))
            with contextlib.suppress(OSError):
                engine.finish()
            raise


class LiveWavWriter(WavWriter):
    """A live session's WAV file: a write the disk refuses ends the file there (``SessionRecord.output_failed``),
    never the music the listener hears."""

    def __init__(self, engine: SessionEngine) -> None:
        super().__init__(engine.out_dir / "session.wav", engine.sample_rate)
        self.record = engine.record
        self.failed = False

    def write(self, block) -> None:
        if self.failed:
            return
        try:
            super().write(block)
        except OSError as error:
            self.failed = True
            self.record.output_failed(self.frames_written / self.sample_rate, str(error))


async def run_live(engine: SessionEngine, player) -> None:
    """Play the session live; the sensor source is started and always stopped here."""
    await engine.source.start()
    try:
        with LiveWavWriter(engine) as wav:
            await engine.run_live(player, wav)
    finally:
        await engine.source.stop()


def run_live_blocking(engine: SessionEngine, player) -> None:
    asyncio.run(run_live(engine, player))
