"""Therapy protocols, client profiles and playlists as validated data files, and the policy that turns a
protocol and the listener's state into music controls."""
from therapy_profiles.policy import Policy, PolicyDecision
from therapy_profiles.schema import (
    MAX_FILE_BYTES,
    SCHEMA_VERSION,
    AbsoluteTempo,
    BreathRatio,
    ClientLimits,
    ClientProfile,
    ClosedLoop,
    HeartRateTempo,
    Limits,
    Overrides,
    Phase,
    Playlist,
    PlaylistEntry,
    Preferences,
    ProfileError,
    Protocol,
    RampLimits,
    Schedule,
    builtin_protocol_names,
    builtin_protocols,
    load_client_profile,
    load_playlist,
    load_protocol,
    protocol_for_entry,
)

__all__ = [
    "MAX_FILE_BYTES", "SCHEMA_VERSION", "AbsoluteTempo", "BreathRatio", "ClientLimits", "ClientProfile",
    "ClosedLoop", "HeartRateTempo", "Limits", "Overrides", "Phase", "Playlist", "PlaylistEntry", "Policy",
    "PolicyDecision", "Preferences", "ProfileError", "Protocol", "RampLimits", "Schedule",
    "builtin_protocol_names", "builtin_protocols", "load_client_profile", "load_playlist", "load_protocol",
    "protocol_for_entry",
]
