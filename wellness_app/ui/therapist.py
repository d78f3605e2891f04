"""Therapist screen: clients, playlists and protocols in the shared store (the same ones as ``heartsong client``,
``playlist`` and ``bundle``): create, edit, assign, export a bundle, render a client's playlist."""
from __future__ import annotations

import asyncio
from pathlib import Path

from kivy.clock import Clock
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.progressbar import ProgressBar
from kivy.uix.screenmanager import Screen
from kivy.uix.spinner import Spinner

from wellness_app.bundles import ImportConflict, export_bundle, import_bundle
from wellness_app.clients import list_clients
from wellness_app.errors import TherapistError
from wellness_app.playlists import custom_protocols, delete_custom_protocol, list_playlists, save_custom_protocol
from wellness_app.storage import data_dir
from wellness_app.ui import theme
from wellness_app.ui.home import QUICK_PROTOCOL
from wellness_app.ui.names import count_text, minutes_text, phase_title, plain_error, protocol_title, readable
from wellness_app.ui.playlist_form import PlaylistForm
from wellness_app.ui.protocol_form import ProtocolForm
from wellness_app.ui.store import save_client_form, save_playlist, set_playlist
from wellness_app.ui.widgets import ButtonRow, CalmButton, Header, Panel, Text, captioned, choice, field, scrolling_column

NO_PLAYLIST = "no playlist"


def _move(widget, parent, error: Text | None = None) -> None:
    """Re-home a form field under its label, with its error line under it (the fields keep their text while the
    tab is rebuilt)."""
    for child in (widget, error):
        if child is not None and child.parent is not None:
            child.parent.remove_widget(child)
    parent.add_widget(Text(widget.hint_text, size=theme.FONT_SMALL, colour=theme.TEXT_MUTED))
    parent.add_widget(widget)
    if error is not None:
        parent.add_widget(error)


def sessions_text(playlist, titles: dict[str, str]) -> str:
    """A playlist's sessions in words, e.g. "Coherent breathing, 6 per minute (10 min) · Calm 5"."""
    return " · ".join(titles.get(e.protocol, readable(e.protocol)) + (f" ({minutes_text(e.overrides.minutes)})"
                      if e.overrides.minutes else "") for e in playlist.sessions)


def protocol_titles(store) -> dict[str, str]:
    """Every protocol a playlist can name (built-in name or stored file name) -> its title; the therapist's own
    say so."""
    from therapy_profiles import builtin_protocols

    titles = {name: protocol_title(p) for name, p in builtin_protocols().items()}
    titles |= {name: f"{protocol_title(p)} (yours)" for name, p in custom_protocols(store).items()}
    return titles


class TherapistScreen(Screen):
    NAME = "therapist"

    def __init__(self, app, **kwargs) -> None:
        super().__init__(name=self.NAME, **kwargs)
        self.app = app
        self.tab = "clients"
        root = BoxLayout(orientation="vertical", padding=theme.PAD, spacing=theme.GAP)
        root.add_widget(Header("Therapist", on_back=lambda: app.go("home")))
        tabs = BoxLayout(size_hint_y=None, height=theme.BUTTON_HEIGHT, spacing=theme.GAP)
        self.tab_buttons = {}
        for tab in ("clients", "playlists", "protocols"):
            button = CalmButton(tab.capitalize(), selected=tab == self.tab)
            button.bind(on_release=lambda _b, t=tab: self.show(t))
            self.tab_buttons[tab] = button
            tabs.add_widget(button)
        root.add_widget(tabs)
        self.message = Text("", size=theme.FONT_SMALL, colour=theme.TEXT_MUTED)
        root.add_widget(self.message)
        self.progress = ProgressBar(max=1.0, value=0, size_hint_y=None, height=0, opacity=0)
        root.add_widget(self.progress)
        scroll, self.column = scrolling_column()
        root.add_widget(scroll)
        self.add_widget(root)

        self.client_id, self.client_name, self.client_rate = field("client id, e.g. c-017"), field(
            "display name (pseudonym)"), field("resonance rate, breaths/min (optional, 4-7.5)", input_filter="float")
        # the client form's fields by the schema's names, each with its error line under it
        self.client_fields = {"client_id": (self.client_id, "Client id"),
                              "display_name": (self.client_name, "Display name"),
                              "resonance_rate_bpm": (self.client_rate, "Resonance rate")}
        self.field_errors = {key: Text("", size=theme.FONT_SMALL, colour=theme.NOTICE) for key in self.client_fields}
        self.playlist_spinners: dict[str, Spinner] = {}
        self.playlist_form: PlaylistForm | None = None  # built on first showing the tab (it lists the protocols)
        self.bundle_path = field("bundle file from another device, e.g. /media/usb/c-017-bundle.json")
        self.replace_on_import: Path | None = None  # the bundle a second Import press may replace from
        self.protocol_form = ProtocolForm(on_problem=lambda text: self.say(text, problem=True))
        self.protocol_form.save_button.bind(on_release=lambda *_: self.save_protocol())

    @property
    def store(self):
        return self.app.store

    def on_pre_enter(self, *_):
        self.show(self.tab)

    def say(self, text: str, *, problem: bool = False) -> None:
        self.message.text = text
        self.message.color = theme.NOTICE if problem else theme.TEXT_MUTED

    def show(self, tab: str) -> None:
        if tab != self.tab:
            self.say("")
        self.tab = tab
        for name, button in self.tab_buttons.items():
            button.selected = name == tab
        self.column.clear_widgets()
        try:
            {"clients": self._clients, "playlists": self._playlists, "protocols": self._protocols}[tab]()
        except Exception as error:  # a damaged document must not take the screen down: name it and carry on
            self.say(str(error), problem=True)

    # -- clients --------------------------------------------------------------------------------------
    def _clients(self) -> None:
        form = Panel(size_hint_y=None)
        form.bind(minimum_height=form.setter("height"))
        form.add_widget(Text("Create or edit a client", size=theme.FONT_LARGE, bold=True))
        for key, (widget, _caption) in self.client_fields.items():
            _move(widget, form, self.field_errors[key])
        save = CalmButton("Save client", primary=True)
        save.bind(on_release=lambda *_: self.save_client())
        form.add_widget(save)
        self.column.add_widget(form)
        bundle = Panel(size_hint_y=None)
        bundle.bind(minimum_height=bundle.setter("height"))
        bundle.add_widget(Text("Import a client's bundle (from Export, or `heartsong bundle export`)", bold=True))
        _move(self.bundle_path, bundle)
        load = CalmButton("Import bundle")
        load.bind(on_release=lambda *_: self.import_bundle())
        bundle.add_widget(load)
        self.column.add_widget(bundle)
        playlists = [NO_PLAYLIST] + [p.name for p in list_playlists(self.store)]
        self.playlist_spinners = {}
        for client in list_clients(self.store):
            panel = Panel(size_hint_y=None)
            panel.bind(minimum_height=panel.setter("height"))
            rate = f" · resonance {client.resonance_rate_bpm:g}/min" if client.resonance_rate_bpm else ""
            active = " · listening on this device" if self.app.settings.get("active_client") == client.client_id else ""
            panel.add_widget(Text(f"{client.display_name} ({client.client_id}){rate}{active}", bold=True))
            spinner = choice(client.playlist or NO_PLAYLIST, playlists)
            spinner.bind(text=lambda _s, value, c=client.client_id: self.assign(c, value))
            self.playlist_spinners[client.client_id] = spinner
            panel.add_widget(captioned("playlist", spinner))
            buttons = []
            for label, action in (("Edit", self.edit_client), ("Export", self.export), ("Render", self.render),
                                  ("Use here", self.use_here)):
                button = CalmButton(label)
                button.bind(on_release=lambda _b, a=action, c=client: a(c))
                buttons.append(button)
            panel.add_widget(ButtonRow(buttons))
            self.column.add_widget(panel)

    def save_client(self) -> None:
        data = {"client_id": self.client_id.text.strip(), "display_name": self.client_name.text.strip()}
        if self.client_rate.text.strip():
            try:
                data["resonance_rate_bpm"] = float(self.client_rate.text)
            except ValueError:
                self.say("resonance rate must be a number of breaths/min, e.g. 5.5", problem=True)
                return
        for error_line in self.field_errors.values():
            error_line.text = ""
        try:
            client = save_client_form(self.store, data)
        except (ValueError, TherapistError) as error:
            key, plain = plain_error(str(error), {k: caption for k, (_w, caption) in self.client_fields.items()})
            if key is not None:
                self.field_errors[key].text = plain
            self.say(plain, problem=True)
            return
        self.say(f"Saved client {client.display_name} ({client.client_id}).")
        self.show("clients")

    def edit_client(self, client) -> None:
        self.client_id.text, self.client_name.text = client.client_id, client.display_name
        self.client_rate.text = f"{client.resonance_rate_bpm:g}" if client.resonance_rate_bpm else ""
        self.say(f"Editing {client.client_id}: change the fields and press Save client.")

    def assign(self, client_id: str, playlist: str) -> None:
        try:
            set_playlist(self.store, client_id, None if playlist == NO_PLAYLIST else playlist)
        except Exception as error:
            self.say(str(error), problem=True)
            return
        self.say(f"{client_id}: {'playlist ' + playlist if playlist != NO_PLAYLIST else 'no playlist'} assigned.")

    def export(self, client) -> Path | None:
        """Write the client's bundle (``heartsong bundle import`` reads it on the listener's device)."""
        target = data_dir() / "exports" / f"{client.client_id}-bundle.json"
        try:
            export_bundle(self.store, client.client_id, target)
        except Exception as error:
            self.say(f"Export failed: {error}", problem=True)
            return None
        self.say(f"Exported {client.client_id} to {target}")
        return target

    def import_bundle(self) -> None:
        """Validate the bundle file named in the field and store its client, playlist and protocols, all or
        nothing (``import_bundle``). When it differs from what is stored, say so and replace only when
        Import is pressed again for the same file."""
        path = Path(self.bundle_path.text.strip())
        replace, self.replace_on_import = self.replace_on_import == path, None
        try:
            client = import_bundle(self.store, path, replace=replace)
        except ImportConflict as conflict:
            self.replace_on_import = path
            self.say(f"This bundle has a different {conflict.kind} {conflict.key!r} than the one stored here. Press "
                     "Import bundle again to replace it (the client's session history is kept).", problem=True)
            return
        except (ValueError, TherapistError) as error:
            self.say(f"Import failed: {error}", problem=True)
            return
        self.say(f"Imported {client.display_name} ({client.client_id})"
                 + (f" with playlist {client.playlist}." if client.playlist else "."))
        self.show("clients")

    def use_here(self, client) -> None:
        self.app.save_settings(active_client=client.client_id)
        self.say(f"This device now plays {client.display_name}'s assigned sessions (shown on Home).")
        self.show("clients")

    # -- playlists ------------------------------------------------------------------------------------
    def _playlists(self) -> None:
        titles = protocol_titles(self.store)
        form = self.playlist_form
        if form is None or form.protocols != titles:  # a protocol was added or deleted: offer the new list
            kept = form.document() if form is not None else None
            form = self.playlist_form = PlaylistForm(titles)
            form.save_button.bind(on_release=lambda *_: self.save_playlist())
            if kept is not None:
                form.name.text = kept["name"]
        if form.parent is not None:
            form.parent.remove_widget(form)
        self.column.add_widget(form)
        for playlist in list_playlists(self.store):
            panel = Panel(size_hint_y=None)
            panel.bind(minimum_height=panel.setter("height"))
            when = (f" · {', '.join(playlist.schedule.days)} at {playlist.schedule.time}" if playlist.schedule else "")
            panel.add_widget(Text(f"{playlist.name}{when}", bold=True))
            panel.add_widget(Text(sessions_text(playlist, titles), size=theme.FONT_SMALL, colour=theme.TEXT_MUTED))
            edit = CalmButton("Edit")
            edit.bind(on_release=lambda _b, p=playlist: self.edit_playlist(p))
            panel.add_widget(edit)
            self.column.add_widget(panel)

    def save_playlist(self) -> None:
        form = self.playlist_form
        try:
            playlist = save_playlist(self.store, form.document())
        except (ValueError, TherapistError) as error:
            self.say(form.show_error(str(error)), problem=True)
            return
        form.show_error("")
        self.say(f"Saved playlist {playlist.name} ({count_text(len(playlist.sessions), 'session')}).")
        self.show("playlists")

    def edit_playlist(self, playlist) -> None:
        self.playlist_form.load(playlist)
        self.column.parent.scroll_y = 1
        self.say(f"Editing {playlist.name}: change the sessions or the schedule and press Save playlist.")

    def render(self, client) -> asyncio.Task:
        """Render the client's playlist to WAV/MIDI and an M3U offline, as the client hears it
        (``render_playlist``), with a progress bar; returns the task."""
        return asyncio.get_event_loop().create_task(self._render(client))

    async def _render(self, client) -> None:
        from wellness_app.playlist_render import render_playlist  # the session engine: imported when first used

        folder = data_dir() / "renders" / client.client_id
        finished = []

        def progress(index, total, protocol, _choice):  # runs on the render thread: Kivy is touched on its own
            def show(_dt):
                if not finished:  # a late progress message must not hide the final one
                    self.progress.value = (index - 1) / total
                    self.say(f"Rendering {index}/{total}: {protocol.name}…")
            Clock.schedule_once(show)

        self.progress.height, self.progress.opacity, self.progress.value = theme.GAP, 1, 0
        try:
            m3u = await asyncio.to_thread(render_playlist, self.store, client.client_id, folder,
                                          on_session=progress)
            finished.append(True)
            self.say(f"Rendered {client.client_id}'s playlist to {m3u}")
        except Exception as error:
            finished.append(True)
            self.say(f"Render stopped: {error}", problem=True)
        finally:
            self.progress.height, self.progress.opacity = 0, 0

    # -- protocols ------------------------------------------------------------------------------------
    def _protocols(self) -> None:
        from therapy_profiles import builtin_protocols

        if not self.protocol_form.template:
            self.protocol_form.load(builtin_protocols()[QUICK_PROTOCOL])
        if self.protocol_form.parent is not None:
            self.protocol_form.parent.remove_widget(self.protocol_form)
        self.column.add_widget(self.protocol_form)
        self.column.add_widget(Text("Built-in protocols can be copied into the form; your own are stored here and "
                                    "named in playlists by their file name, e.g. calm-5.json.",
                                    size=theme.FONT_SMALL, colour=theme.TEXT_MUTED))
        custom = custom_protocols(self.store)
        for name, protocol in list(builtin_protocols().items()) + list(custom.items()):
            panel = Panel(size_hint_y=None)
            panel.bind(minimum_height=panel.setter("height"))
            panel.add_widget(Text(f"{protocol_title(protocol)} · {minutes_text(protocol.total_duration_s / 60)}",
                                  bold=True))
            panel.add_widget(Text(f"{name} · {protocol.description}", size=theme.FONT_SMALL, colour=theme.TEXT_MUTED))
            phases = " · ".join(
                f"{phase_title(protocol, p.name)} {minutes_text(p.duration_s / 60)}"
                + (f" at {p.breath_rate_bpm:g}/min" if p.breath_rate_bpm else "") for p in protocol.phases)
            panel.add_widget(Text(phases, size=theme.FONT_SMALL))
            actions = [("Copy", self.copy_protocol)]
            if name in custom:
                actions += [("Edit", self.edit_protocol), ("Delete", self.delete_protocol)]
            buttons = []
            for label, action in actions:
                button = CalmButton(label)
                button.bind(on_release=lambda _b, a=action, n=name, p=protocol: a(n, p))
                buttons.append(button)
            panel.add_widget(ButtonRow(buttons))
            self.column.add_widget(panel)

    def copy_protocol(self, name: str, protocol) -> None:
        self.protocol_form.load(protocol)
        self.column.parent.scroll_y = 1
        self.say(f"A new protocol from {name}: give it a name, change the phases, and press Save protocol.")

    def edit_protocol(self, file_name: str, protocol) -> None:
        self.protocol_form.load(protocol, editing=file_name)
        self.column.parent.scroll_y = 1
        self.say(f"Editing {file_name}: playlists that use it get the changes when you save.")

    def save_protocol(self) -> None:
        form = self.protocol_form
        try:
            file_name = save_custom_protocol(self.store, form.document(), replacing=form.editing)
        except (ValueError, TherapistError) as error:
            self.say(form.show_error(str(error)), problem=True)
            return
        form.show_error("")
        form.load(custom_protocols(self.store)[file_name], editing=file_name)
        self.say(f"Saved {file_name}: name it in a playlist as {file_name}.")
        self.show("protocols")

    def delete_protocol(self, file_name: str, _protocol) -> None:
        try:
            delete_custom_protocol(self.store, file_name)
        except TherapistError as error:
            self.say(str(error), problem=True)
            return
        if self.protocol_form.editing == file_name:
            self.protocol_form.editing = None
            self.protocol_form.title.text = "New protocol (the deleted one's settings)"
        self.say(f"Deleted {file_name}.")
        self.show("protocols")
