"""The playground: talk to a bot in a browser and watch every turn.

``cantata web BOT.py`` serves a page from this process (see ``_app``): the
microphone and the speaker are the browser's, the agent session runs here
against the local engine or the hosted API (``_bridge`` carries one tab's
session over a WebSocket), and the page shows the transcript, tool calls,
approvals to click, per-turn metrics and the raw event log. ``_run`` is what
the command does.
"""

from ._app import Playground as Playground
from ._app import serve_playground as serve_playground
from ._bridge import BrowserSink as BrowserSink
from ._bridge import audio_frame as audio_frame
from ._run import run_playground as run_playground
