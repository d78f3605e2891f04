"""Entry point for python-for-android (buildozer.spec): the Heartsong app on the app's asyncio loop."""
import asyncio

from wellness_app.ui import prepare_kivy_environment, run_app

prepare_kivy_environment(offscreen=False)
from wellness_app.ui.app import HeartsongApp  # noqa: E402  (Kivy reads its settings at import)

asyncio.run(run_app(HeartsongApp()))
