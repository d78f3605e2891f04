"""Versioned, validated data files: Protocol (phases of a session), ClientProfile and Playlist, with their loaders.

Files are TOML or JSON, at most ``MAX_FILE_BYTES``; the size is checked before parsing, every field is range
checked, unknown fields and unknown ``schema_version`` values are refused, and a bad file raises one
``ProfileError`` whose message is a single line naming the field, the value and the allowed range. A loader
returns a fully validated object or raises: nothing is ever half-imported.

Breath holds: a phase's breath pattern is ``inhale : hold_in : exhale : hold_out`` in ratio parts (box breathing
is 4:4:4:4, Weil's 4-7-8 is 4:7:8:0). ``MusicControls`` knows only inhale and exhale, so the music folds each
hold into the movement before it: the hold after inhale sustains the inhale swell at its peak, the hold after
exhale extends the release (``BreathRatio.inhale_fraction``). The exact parts travel on in ``PolicyDecision``.
"""
from __future__ import annotations

import json
import re
import tomllib
import unicodedata
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from generators.controls import LEAD_PROGRAMS, MODES

SCHEMA_VERSION = 1
SUPPORTED_SCHEMA_VERSIONS = (1,)
MAX_FILE_BYTES = 256 * 1024  # real protocols are a few KiB; the cap bounds parse time and memory
MAX_SESSION_S = 4 * 3600.0
BREATH_RATE_RANGE = (3.0, 20.0)  # breaths/min: slowest paced breathing to fast resting breathing
TEMPO_RANGE = (40.0, 120.0)  # beats/min a protocol may ask for (MusicControls itself accepts 30-140)


class ProfileError(ValueError):
    """A protocol, profile or playlist that cannot be used; ``str()`` is one line naming the problem and the fix."""


def _ranged(lo: float, hi: float, unit: str, number: type = float):
    """A float (or int) type limited to ``lo``-``hi`` inclusive whose error message states the range and unit."""

    def check(value: float) -> float:
        if not (lo <= value <= hi):  # also refuses NaN
            raise ValueError(f"is out of range (allowed {lo:g}-{hi:g} {unit})")
        return value

    schema = {"minimum": lo, "maximum": hi, "unit": unit}
    return Annotated[number, AfterValidator(check), Field(json_schema_extra=schema)]


def _one_of(allowed: tuple[str, ...]):
    def check(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"is not allowed (choose one of {', '.join(allowed)})")
        return value

    return Annotated[str, AfterValidator(check)]


def _slug(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,39}", value):
        raise ValueError("is not a valid name (allowed: 1-40 lower-case letters, digits and '-', e.g. coherent-6)")
    return value


# Characters that move the cursor, reorder or hide text, or end a line on a terminal: refused in every free-text
# field, so a bundle cannot rewrite what `heartsong client list` shows. Zero-width joiners stay (some scripts need them).
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def is_control_character(ch: str) -> bool:
    """True for C0/C1 controls and DEL (ESC, NUL, CR, LF, ...), line/paragraph separators, surrogates and the
    bidirectional controls U+061C, U+200E-200F, U+202A-202E, U+2066-2069."""
    return ch in BIDI_CONTROLS or unicodedata.category(ch) in ("Cc", "Zl", "Zp", "Cs")


def _printable(value: str) -> str:
    bad = next((ch for ch in value if is_control_character(ch)), None)
    if bad is not None:
        raise ValueError(f"holds the control character {ascii(bad)} (allowed: printable text on one line)")
    return value


def _one_line(value: str) -> str:
    if not (1 <= len(value) <= 300):
        raise ValueError("is not allowed (one line of 1-300 characters)")
    return _printable(value)


INSTRUMENTS = ("pad", *LEAD_PROGRAMS)  # "pad" plus the lead instruments the arranger can voice the melody with


def _instrument(value: str) -> str:
    if value not in INSTRUMENTS:
        raise ValueError(f"is not an instrument we play (allowed: {', '.join(INSTRUMENTS)})")
    return value


Slug = Annotated[str, AfterValidator(_slug)]
Instrument = Annotated[str, AfterValidator(_instrument)]
OneLine = Annotated[str, AfterValidator(_one_line)]
BreathRate = _ranged(*BREATH_RATE_RANGE, "breaths/min")
Tempo = _ranged(*TEMPO_RANGE, "beats/min")
Volume = _ranged(0.0, 1.0, "(linear level)")
Mode = _one_of(MODES)
PitchClass = _ranged(0, 11, "(pitch class, 0 = C)", int)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # Monday first, as date.weekday() counts
Weekday = _one_of(WEEKDAYS)


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class BreathRatio(_Strict):
    """Breath pattern in ratio parts (unitless; seconds follow from the guide rate)."""

    inhale: _ranged(0.5, 20, "parts") = 4.0
    hold_in: _ranged(0, 20, "parts") = 0.0  # hold with full lungs, after inhale
    exhale: _ranged(0.5, 20, "parts") = 6.0
    hold_out: _ranged(0, 20, "parts") = 0.0  # hold with empty lungs, after exhale

    @property
    def total(self) -> float:
        return self.inhale + self.hold_in + self.exhale + self.hold_out

    @property
    def inhale_fraction(self) -> float:
        """Share of the breath the music treats as inhale: inhale plus the hold after it (see module doc)."""
        return (self.inhale + self.hold_in) / self.total

    @model_validator(mode="after")
    def _music_can_follow(self) -> "BreathRatio":
        if not 0.15 <= self.inhale_fraction <= 0.85:
            raise ValueError(
                f"gives an inhale fraction of {self.inhale_fraction:.2f}, "
                "out of range (allowed 0.15-0.85 of the breath)"
            )
        return self


class AbsoluteTempo(_Strict):
    """A fixed tempo goal; the policy glides to it at the protocol's tempo cap."""

    kind: Literal["absolute"]
    bpm: Tempo = 60.0


class HeartRateTempo(_Strict):
    """Tempo led from the listener's heart rate: the goal is the HR measured at the start of the session minus
    ``descend_bpm``, never below ``floor_bpm``; the policy holds the descent while HR does not follow."""

    kind: Literal["heart-rate"]
    descend_bpm: _ranged(0, 40, "beats/min") = 0.0
    floor_bpm: Tempo = 50.0


TempoPolicy = Annotated[Union[AbsoluteTempo, HeartRateTempo], Field(discriminator="kind")]


class Phase(_Strict):
    """One stage of a session. ``breath_rate_bpm`` None means the guide follows the listener (iso, no lead)."""

    name: Slug
    title: OneLine | None = None  # the phase's name in words for the listener, e.g. "Slowing down"
    duration_s: _ranged(1, MAX_SESSION_S, "s")
    breath_rate_bpm: BreathRate | None = None
    breath_ratio: BreathRatio = BreathRatio()
    tempo: TempoPolicy = AbsoluteTempo(kind="absolute")
    mode: Mode = "major"
    density: _ranged(0.25, 4, "notes/beat") = 1.0
    register_midi: _ranged(48, 84, "(MIDI note)", int) = 67
    brightness: _ranged(0, 1, "(0 dark - 1 bright)") = 0.5
    volume: Volume = 0.7  # level ceiling for this phase; the policy ramps between phases
    palette: Annotated[list[Instrument], Field(max_length=8)] = []  # "pad" and the melody's lead instrument


class RampLimits(_Strict):
    """How fast the plan may move (the iso principle's cap)."""

    guide_bpm_per_min: _ranged(0.1, 4, "breaths/min per minute") = 1.0
    tempo_bpm_per_min: _ranged(0.5, 12, "beats/min per minute") = 3.0


class ClosedLoop(_Strict):
    """When the body does not follow, the ramp holds."""

    enabled: bool = True
    breath_lag_tolerance_bpm: _ranged(0.5, 5, "breaths/min") = 1.5
    min_breathing_confidence: _ranged(0, 1, "(confidence)") = 0.5
    hr_lead_limit_bpm: _ranged(2, 20, "beats/min") = 6.0


class Limits(_Strict):
    """Safety limits that override every phase."""

    max_volume: Volume = 1.0
    min_tempo_bpm: Tempo = 40.0


class Protocol(_Strict):
    """A therapy session plan: ordered phases plus the ramp caps, closed-loop settings and limits."""

    schema_version: int
    name: Slug
    title: OneLine | None = None  # the name in words for the listener, e.g. "Coherent breathing, 6 per minute"
    description: OneLine
    source: OneLine  # the published practice this protocol follows
    tonic: PitchClass | None = None  # pitch class; None lets the policy pick from its seed
    ramp: RampLimits = RampLimits()
    loop: ClosedLoop = ClosedLoop()
    limits: Limits = Limits()
    phases: Annotated[list[Phase], Field(min_length=1, max_length=32)]

    @model_validator(mode="after")
    def _consistent(self) -> "Protocol":
        names = [p.name for p in self.phases]
        duplicate = next((n for n in names if names.count(n) > 1), None)
        if duplicate:
            raise ValueError(f"has two phases named {duplicate!r} (phase names must be unique)")
        if self.total_duration_s > MAX_SESSION_S:
            raise ValueError(
                f"last {self.total_duration_s:g} s in total, out of range (allowed up to {MAX_SESSION_S:g} s)"
            )
        return self

    @property
    def total_duration_s(self) -> float:
        return sum(p.duration_s for p in self.phases)

    def phase_at(self, elapsed_s: float) -> tuple[int, Phase, float]:
        """(index, phase, seconds left in it) at session time ``elapsed_s`` (s); past the end, the last phase
        with 0 s left."""
        end = 0.0
        for index, phase in enumerate(self.phases):
            end += phase.duration_s
            if elapsed_s < end:
                return index, phase, end - elapsed_s
        return len(self.phases) - 1, self.phases[-1], 0.0

    def scaled_to(self, minutes: float) -> "Protocol":
        """The same plan lasting ``minutes``: every phase scaled by the same factor, so a short demo still
        passes through every phase. When shortened by a factor k < 1, the ramp caps grow by 1/k (up to their
        schema maximum, 4 breaths/min and 12 beats/min per minute) so the plan keeps its shape; even the
        maximum is gentler than clinical paced breathing, which starts at the target rate at once."""
        factor = minutes * 60.0 / self.total_duration_s
        speedup = max(1.0, 1.0 / factor) if factor > 0 else 1.0
        data = self.model_dump()
        for phase in data["phases"]:
            phase["duration_s"] *= factor
        data["ramp"]["guide_bpm_per_min"] = min(4.0, self.ramp.guide_bpm_per_min * speedup)
        data["ramp"]["tempo_bpm_per_min"] = min(12.0, self.ramp.tempo_bpm_per_min * speedup)
        return validate_document(Protocol, data, f"protocol {self.name} scaled to {minutes:g} min")

    def with_overrides(self, overrides: "Overrides") -> "Protocol":
        """A copy with a client's overrides applied (``Overrides`` documents each one)."""
        data = self.model_dump()
        for phase in data["phases"]:
            if overrides.breath_rate_bpm is not None and phase["breath_rate_bpm"] is not None:
                phase["breath_rate_bpm"] = overrides.breath_rate_bpm
            if overrides.mode is not None:
                phase["mode"] = overrides.mode
        if overrides.tonic is not None:
            data["tonic"] = overrides.tonic
        if overrides.max_volume is not None:
            data["limits"]["max_volume"] = min(self.limits.max_volume, overrides.max_volume)
        if overrides.min_tempo_bpm is not None:
            data["limits"]["min_tempo_bpm"] = max(self.limits.min_tempo_bpm, overrides.min_tempo_bpm)
        protocol = validate_document(Protocol, data, f"protocol {self.name} with overrides")
        return protocol.scaled_to(overrides.minutes) if overrides.minutes is not None else protocol


class Overrides(_Strict):
    """Per-client changes to a protocol; None keeps the protocol's value."""

    breath_rate_bpm: BreathRate | None = None  # new target of every guided phase, e.g. the client's resonance rate
    mode: Mode | None = None
    tonic: PitchClass | None = None
    max_volume: Volume | None = None  # can only lower the protocol's limit
    min_tempo_bpm: Tempo | None = None  # can only raise the protocol's limit
    minutes: _ranged(0.5, MAX_SESSION_S / 60, "min") | None = None


class Preferences(_Strict):
    modes: Annotated[list[Mode], Field(max_length=len(MODES))] = []
    palette: Annotated[list[Instrument], Field(max_length=8)] = []
    tonic: PitchClass | None = None


class ClientLimits(_Strict):
    max_volume: Volume = 1.0
    min_tempo_bpm: Tempo = 40.0


class ClientProfile(_Strict):
    """One client, pseudonymous: no real name or contact details belong here."""

    schema_version: int
    client_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    display_name: Annotated[str, Field(min_length=1, max_length=80), AfterValidator(_printable)]
    resonance_rate_bpm: _ranged(4, 7.5, "breaths/min") | None = None  # from a resonance-assessment session
    preferences: Preferences = Preferences()
    limits: ClientLimits = ClientLimits()
    playlist: Slug | None = None  # name of the assigned playlist


class Schedule(_Strict):
    days: Annotated[list[Weekday], Field(min_length=1, max_length=7)]
    time: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]  # local time "HH:MM"


class PlaylistEntry(_Strict):
    # a built-in protocol's name, or a protocol file next to the playlist
    protocol: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_printable)]
    overrides: Overrides = Overrides()


class Playlist(_Strict):
    """Ordered sessions for one client, with an optional schedule."""

    schema_version: int
    name: Slug
    sessions: Annotated[list[PlaylistEntry], Field(min_length=1, max_length=100)]
    schedule: Schedule | None = None


# -- loading ---------------------------------------------------------------------------------------------

# Discriminator tags pydantic puts into error locations, and the model each one selects.
_TAGS: dict[str, type[BaseModel]] = {"absolute": AbsoluteTempo, "heart-rate": HeartRateTempo}
_TYPE_WORDS = {
    "float_type": "must be a number", "int_type": "must be a whole number", "string_type": "must be text",
    "bool_type": "must be true or false", "list_type": "must be a list", "model_type": "must be a table",
    "dict_type": "must be a table", "int_from_float": "must be a whole number",
}


def _location(loc: tuple) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part not in _TAGS:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def _field_names(model: type[BaseModel], loc: tuple) -> list[str]:
    """The fields allowed where an unknown one was found, so the message can list them."""
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if part in _TAGS:
            model = _TAGS[part]
            continue
        annotation = model.model_fields[part].annotation
        args = getattr(annotation, "__args__", ()) or (annotation,)
        model = next((a for a in args if isinstance(a, type) and issubclass(a, BaseModel)), model)
    return list(model.model_fields)


def _describe(error: dict, model: type[BaseModel]) -> str:
    where = _location(error["loc"])
    kind = error["type"]
    value = error.get("input")
    shown = repr(value) if not isinstance(value, (dict, list)) else ("a table" if isinstance(value, dict) else "a list")
    if len(shown) > 60:
        shown = shown[:57] + "..."
    if kind == "missing":
        return f"{where} is missing"
    if kind == "extra_forbidden":
        return f"{where} is not a known field (allowed: {', '.join(_field_names(model, error['loc']))})"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        return f"{where}.kind must be one of 'absolute', 'heart-rate'"
    if kind == "value_error":
        message = error["msg"].removeprefix("Value error, ")
        if not error["loc"]:
            return message
        return f"{where} {message}" if isinstance(value, dict) else f"{where} = {shown} {message}"
    if kind in _TYPE_WORDS:
        return f"{where} = {shown} {_TYPE_WORDS[kind]}"
    if kind in ("greater_than_equal", "less_than_equal", "too_long", "too_short", "string_pattern_mismatch",
                "string_too_long", "string_too_short"):
        return f"{where} = {shown} is not allowed ({error['msg'][0].lower()}{error['msg'][1:]})"
    return f"{where} = {shown}: {error['msg'][0].lower()}{error['msg'][1:]}"


def validate_document(model: type[BaseModel], data: Any, what: str):
    """Validate ``data`` as ``model`` or raise one ProfileError line prefixed with ``what``."""
    if not isinstance(data, dict):
        raise ProfileError(f"{what}: the top level must be a table of fields, not {type(data).__name__}")
    if "schema_version" in model.model_fields:
        version = data.get("schema_version")
        if version is None:
            raise ProfileError(f"{what}: schema_version is missing (add schema_version = {SCHEMA_VERSION})")
        if type(version) is not int or version not in SUPPORTED_SCHEMA_VERSIONS:
            raise ProfileError(
                f"{what}: schema_version = {version!r} is not supported (this Heartsong reads schema_version "
                f"{', '.join(map(str, SUPPORTED_SCHEMA_VERSIONS))}; upgrade Heartsong or convert the file)"
            )
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ProfileError(f"{what}: {_describe(error.errors()[0], model)}") from None
    except RecursionError:
        raise ProfileError(f"{what}: nested too deeply") from None


def _read_document(path: Path, kind: str) -> tuple[Any, str]:
    """Parse a TOML or JSON file of at most MAX_FILE_BYTES; returns the data and the label for messages."""
    what = f"{kind} file {path.name}"
    if path.suffix.lower() not in (".toml", ".json"):
        raise ProfileError(f"{what}: unsupported file type {path.suffix or '(none)'!r} (use .toml or .json)")
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)  # bounded read: stat sizes lie for pipes and /dev files
    except FileNotFoundError:
        raise ProfileError(f"{what} not found ({path})") from None
    except OSError as error:
        raise ProfileError(f"{what} cannot be read ({error.strerror or error})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ProfileError(f"{what} is larger than the {MAX_FILE_BYTES // 1024} KiB limit (a real {kind} is a few KiB)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ProfileError(f"{what} is not UTF-8 text (bad byte at offset {error.start})") from None
    try:
        if path.suffix.lower() == ".toml":
            data = tomllib.loads(text)
        else:
            data = json.loads(text, parse_constant=_refuse_constant)
    except tomllib.TOMLDecodeError as error:
        raise ProfileError(f"{what} is not valid TOML ({error})") from None
    except json.JSONDecodeError as error:
        where = f"line {error.lineno}, column {error.colno}"
        raise ProfileError(f"{what} is not valid JSON ({error.msg} at {where})") from None
    except ValueError as error:  # NaN / Infinity in JSON
        raise ProfileError(f"{what} is not valid JSON ({error})") from None
    except RecursionError:
        raise ProfileError(f"{what} is nested too deeply") from None
    return data, what


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def builtin_protocol_names() -> list[str]:
    """Names of the protocols shipped in ``therapy_profiles/protocols``, sorted."""
    folder = resources.files("therapy_profiles") / "protocols"
    return sorted(entry.name.removesuffix(".toml") for entry in folder.iterdir() if entry.name.endswith(".toml"))


def builtin_protocols() -> dict[str, Protocol]:
    """Every built-in protocol, by name."""
    return {name: load_protocol(name) for name in builtin_protocol_names()}


def reserved_protocol_name_error(file_name: str, protocol: Protocol) -> str | None:
    """Why a custom protocol stored as ``file_name`` may not be installed, or None: neither its name nor its file
    name may be a built-in's (``coherent-6.json`` would pass for ``coherent-6`` in every list)."""
    builtin = builtin_protocol_names()
    for name in (protocol.name, Path(file_name).stem):
        if name in builtin:
            return f"{name!r} is a built-in protocol: give yours another name, e.g. {name}-mine"
    return None


def load_protocol(path_or_name: str | Path) -> Protocol:
    """A built-in protocol by name (e.g. ``"coherent-6"``) or a protocol file (.toml or .json)."""
    text = str(path_or_name)
    looks_like_file = (
        isinstance(path_or_name, Path) or text.lower().endswith((".toml", ".json")) or "/" in text or "\\" in text
    )
    if looks_like_file:
        data, what = _read_document(Path(path_or_name), "protocol")
        return validate_document(Protocol, data, what)
    names = builtin_protocol_names()
    if text not in names:
        raise ProfileError(f"unknown protocol {text!r}: choose one of {', '.join(names)} (see `heartsong protocols`)")
    resource = resources.files("therapy_profiles") / "protocols" / f"{text}.toml"
    with resources.as_file(resource) as path:
        protocol = validate_document(Protocol, _read_document(path, "protocol")[0], f"built-in protocol {text}")
    if protocol.name != text:
        raise ProfileError(f"built-in protocol file {text}.toml names itself {protocol.name!r} (the names must match)")
    return protocol


def load_client_profile(path: str | Path) -> ClientProfile:
    """A client profile file (.toml or .json)."""
    data, what = _read_document(Path(path), "client profile")
    return validate_document(ClientProfile, data, what)


def load_playlist(path: str | Path) -> Playlist:
    """A playlist file (.toml or .json). Every protocol it names must load, so a playlist imports whole or not at all;
    a protocol given as a file name is looked up next to the playlist."""
    path = Path(path)
    data, what = _read_document(path, "playlist")
    playlist = validate_document(Playlist, data, what)
    for index, entry in enumerate(playlist.sessions):
        try:
            protocol_for_entry(entry, path.parent)
        except ProfileError as error:
            raise ProfileError(f"{what}: sessions[{index}].protocol: {error}") from None
    return playlist


def protocol_for_entry(entry: PlaylistEntry, folder: str | Path = ".") -> Protocol:
    """The protocol a playlist entry asks for, with the entry's overrides applied."""
    name = entry.protocol
    is_file = name.lower().endswith((".toml", ".json"))
    protocol = load_protocol(Path(folder) / name if is_file else name)
    return protocol.with_overrides(entry.overrides)
