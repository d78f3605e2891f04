"""The user-facing error every command raises: ``str()`` is one line naming the problem and the fix (exit code 2)."""


class CliError(Exception):
    """A user-facing failure: printed as one line, exit code 2."""


class TherapistError(Exception):
    """A therapist's request that cannot be carried out (clients, playlists, protocols, bundles); ``str()`` is one
    line naming the problem and the fix."""
