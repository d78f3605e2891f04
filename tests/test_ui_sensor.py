"""The Sensor screen with straps in the Bluetooth lab (read through bleak): choosing one checks it over a short
test connection (battery, heart rate, RR / contact / ECG / ACC badges, HR-only said plainly), the choice is
remembered for the next launch, and Forget drops it."""
from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ui_driver import frames, press, run_flow_and_save, run_flow_subprocess, shot, wait_until  # noqa: E402


async def flow(app, obs: dict) -> None:
    from wellness_app.ui.app import HeartsongApp

    await frames(5)
    app.plan_session("coherent-6", 1.0, label="Coherent breathing")
    sensor = app.screens["sensor"]
    await wait_until(lambda: app.manager.current == "sensor", 100, "Sensor screen")
    await wait_until(lambda: not sensor.scan_button.disabled, 2000, "scan finished")
    choices = {c.spec: c for c in sensor.choices}
    obs["scanned"] = sorted(choices)

    sensor.select(choices["virtual:h10"])
    obs["start_disabled_while_checking"] = sensor.start_button.disabled
    obs["checking_status"] = sensor.status.text
    await wait_until(sensor.check_task.done, 3000, "H10 checked")
    obs["h10_status"] = sensor.status.text
    obs["h10_row"] = next(c.detail_line for c in sensor.choices if c.spec == "virtual:h10")
    obs["h10_plain_row"] = next(c.line for c in sensor.choices if c.spec == "virtual:h10")
    obs["start_enabled_after"] = not sensor.start_button.disabled
    obs["shots"] = [await shot("sensor-checked")]
    settings = app.settings_path
    obs["settings_strap"] = json.loads(settings.read_text())["strap"]
    obs["settings_mode"] = stat.S_IMODE(os.stat(settings).st_mode)
    obs["next_launch_spec"] = HeartsongApp().sensor_spec  # a new app reads the remembered strap

    sensor.select(choices["virtual:hr-only"])
    await wait_until(sensor.check_task.done, 3000, "HR-only strap checked")
    obs["hr_only_status"] = sensor.status.text
    obs["hr_only_row"] = next(c.detail_line for c in sensor.choices if c.spec == "virtual:hr-only")

    forget = next(w for w in sensor.column.children if getattr(w, "text", "").startswith("Forget"))
    obs["forget_text"] = forget.text
    press(forget)
    await frames(2)
    obs["after_forget"] = [app.settings.get("strap"), app.sensor_spec, sensor.start_button.disabled,
                           sensor.status.text]
    obs["next_launch_after_forget"] = HeartsongApp().sensor_spec


def test_sensor_check_remember_forget(tmp_path):
    obs = run_flow_subprocess(__file__, tmp_path)
    assert {"virtual:h10", "virtual:hrs", "virtual:hr-only"} <= set(obs["scanned"])
    assert obs["start_disabled_while_checking"], "one connection at a time: Start waits for the check"
    assert obs["checking_status"].startswith("Connecting to Polar H10")
    status = obs["h10_status"]
    assert status.startswith("Polar H10 0A1B2C3D: heart rate ") and status.endswith("battery 87%. Ready."), status
    assert 45 <= int(status.split("heart rate ")[1].split()[0]) <= 110
    assert "battery 87%" in obs["h10_row"] and obs["h10_row"].endswith("[RR] [contact] [ECG] [ACC]"), obs["h10_row"]
    assert obs["h10_plain_row"] == "Polar H10 0A1B2C3D (virtual)  ·  battery 87%", "plain by default, marked virtual"
    assert obs["start_enabled_after"]
    assert obs["settings_strap"] == {"spec": "virtual:h10", "name": "Polar H10 0A1B2C3D"}
    assert obs["settings_mode"] == 0o600, "settings name the listener's strap and client: user-only"
    assert obs["next_launch_spec"] == "virtual:h10"
    assert "heart rate only (no beat-to-beat intervals)" in obs["hr_only_status"], obs["hr_only_status"]
    assert obs["hr_only_row"].endswith("[contact]"), "no RR badge for an HR-only strap"
    assert obs["forget_text"] == "Forget Virtual HR-only Strap"
    strap, spec, start_disabled, status = obs["after_forget"]
    assert strap is None and spec is None and start_disabled and status.startswith("Forgotten.")
    assert obs["next_launch_after_forget"] == "virtual", "without a remembered strap the virtual one is chosen"
    assert all(Path(p).stat().st_size > 10_000 for p in obs["shots"])


if __name__ == "__main__":
    run_flow_and_save(flow)
