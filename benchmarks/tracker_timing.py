"""Times every ``BreathingTracker.update`` once imported: the CPU seconds of each call go to ``update_seconds``
(CPU rather than wall time, so that other work on a shared machine does not count)."""
import time

from biosignals.breathing import BreathingTracker

update_seconds: list[float] = []
_update = BreathingTracker.update


def _timed_update(self, *args, **kwargs):
    start = time.process_time()
    try:
        return _update(self, *args, **kwargs)
    finally:
        update_seconds.append(time.process_time() - start)


BreathingTracker.update = _timed_update
