"""Agents: what a session says and can do, written by subclassing :class:`Agent`.

An agent is its instructions, voice, audio formats, turn detection, model
settings, tools and handoffs, plus hooks it may override. Class attributes
give the defaults; keyword arguments to the constructor override them for
one instance::

    class WeatherBot(Agent):
        instructions = "You help people with the weather. Be brief."

        @tool
        async def get_weather(self, city: str) -> str:
            \"\"\"Current weather for a city.\"\"\"
            ...

    WeatherBot(voice="verse", tool_timeout=5)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from framework.plugin import Plugin, resolve_plugins
from framework.protocol import (
    UNSET,
    AudioTranscription,
    McpTool,
    RealtimeAudioConfig,
    RealtimeAudioConfigInput,
    RealtimeAudioConfigOutput,
    RealtimeAudioFormats,
    RealtimeError,
    RealtimeResponse,
    RealtimeSessionCreateRequest,
    RealtimeToolsConfigUnion,
    SemanticVad,
    ServerVad,
    Unset,
)
from framework.runtime import (
    ApprovalRequest,
    Decision,
    ElicitationAnswer,
    ElicitationRequest,
    SessionPlugin,
)
from framework.tools import FunctionTool, fit_name, tools_of

if TYPE_CHECKING:
    from framework.runtime import Interrupted, Session

_SETTINGS = (
    "name",
    "instructions",
    "voice",
    "model",
    "input_audio_format",
    "output_audio_format",
    "turn_detection",
    "transcription",
    "output_modalities",
    "max_output_tokens",
    "tool_choice",
    "tool_timeout",
    "approval_timeout",
    "handoffs",
    "handoff_description",
    "plugins",
    "hosted_tools",
)


class Agent:
    """The base class of every agent.

    Attributes (class-level defaults; any can be overridden per instance):
        name: shown in events and handoff tools (default: the class name).
        instructions: the system instructions, or a method
            ``instructions(self, session) -> str`` that can read session state.
        voice: the output voice (None: the server's default).
        model: the model asked for when connecting (None: the default).
        input_audio_format, output_audio_format: protocol audio formats
            (for example ``AudioPCMU(type="audio/pcmu")`` for telephony).
        turn_detection: ``ServerVad(...)``, ``SemanticVad(...)``, ``None`` for
            manual turns, or ``UNSET`` for the server's default.
        transcription: input transcription settings (``UNSET``: server default).
        output_modalities: ``["audio"]`` or ``["text"]`` (None: server default).
        max_output_tokens, tool_choice: model settings (None: server default).
        tool_timeout: seconds a tool may run unless it sets its own.
        approval_timeout: seconds an approval may wait before it is a rejection.
        handoffs: agents this one can hand the conversation to; each becomes a
            ``transfer_to_<name>`` tool.
        handoff_description: what this agent is for, as other agents' handoff
            tools describe it.
        plugins: plugins opened for the session (instances, or the names of
            installed plugins); their tools join the agent's.
        hosted_tools: MCP servers the Realtime *server* calls (``McpTool``);
            their approval requests come to this agent like local ones.
    """

    name: str = ""
    instructions: str | Callable[..., str] = "You are a helpful assistant. Be brief."
    voice: str | None = None
    model: str | None = None
    input_audio_format: RealtimeAudioFormats | None = None
    output_audio_format: RealtimeAudioFormats | None = None
    turn_detection: ServerVad | SemanticVad | Unset | None = UNSET
    transcription: AudioTranscription | Unset | None = UNSET
    output_modalities: Sequence[str] | None = None
    max_output_tokens: int | str | None = None
    tool_choice: str | None = None
    tool_timeout: float = 30.0
    approval_timeout: float = 60.0
    handoffs: Sequence[Agent] = ()
    handoff_description: str = ""
    plugins: Sequence[Plugin | str] = ()
    hosted_tools: Sequence[McpTool] = ()

    def __init__(self, *, tools: Sequence[FunctionTool] = (), **settings: Any) -> None:
        unknown = set(settings) - set(_SETTINGS)
        if unknown:
            raise TypeError(
                f"{type(self).__name__}: unknown setting(s) {sorted(unknown)}; "
                f"known: {', '.join(_SETTINGS)}"
            )
        for key, value in settings.items():
            setattr(self, key, value)
        if not self.name:
            self.name = type(self).__name__
        self._extra_tools = list(tools)
        self._tools: dict[str, FunctionTool] | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

    # --- tools ---------------------------------------------------------------------

    def all_tools(self) -> list[FunctionTool]:
        """The agent's tools: decorated methods, extra tools, then handoffs."""
        return list(self._tool_map().values())

    def find_tool(self, name: str) -> FunctionTool | None:
        return self._tool_map().get(name)

    def _tool_map(self) -> dict[str, FunctionTool]:
        if self._tools is None:
            found: dict[str, FunctionTool] = {}
            for t in [*tools_of(self), *self._extra_tools, *self._handoff_tools()]:
                if t.name in found:
                    raise ValueError(f"{self.name}: two tools are named {t.name!r}")
                found[t.name] = t
            self._tools = found
        return self._tools

    def _handoff_tools(self) -> list[FunctionTool]:
        tools = []
        for target in self.handoffs:
            transfer = _transfer(target)
            description = f"Hand the conversation to {target.name}." + (
                f" {target.handoff_description}" if target.handoff_description else ""
            )
            tools.append(
                FunctionTool.from_function(
                    transfer,
                    name=fit_name(f"transfer_to_{target.name.lower()}"),
                    description=description,
                )
            )
        return tools

    def handoff_target(self, value: object) -> Agent | None:
        """The agent a tool's return value hands the session to: any ``Agent`` it returns."""
        return value if isinstance(value, Agent) else None

    def session_plugins(self) -> Sequence[SessionPlugin]:
        """The agent's plugins, installed ones looked up by name.

        Raises:
            PluginError: a name no installed plugin has, or one that failed to load.
        """
        return resolve_plugins(self.plugins)

    # --- session configuration -----------------------------------------------------

    def render_instructions(self, session: Session | None = None) -> str:
        """The instructions as text (calling the method form with the session)."""
        value = self.instructions
        if callable(value):
            return str(value(session))
        return value

    def session_config(
        self,
        *,
        keep_audio_from: RealtimeSessionCreateRequest | None = None,
        session: Session | None = None,
        tools: Sequence[RealtimeToolsConfigUnion] | None = None,
    ) -> RealtimeSessionCreateRequest:
        """The ``session.update`` payload for this agent.

        Only what the agent sets is sent, so the server keeps its defaults for
        the rest. With ``keep_audio_from`` (a handoff) the current audio
        formats are restated unless this agent sets its own, and the voice is
        left as it is: the protocol refuses a new voice once audio was produced.
        ``tools`` replaces the agent's own tool definitions (the session adds
        its plugins' tools that way).
        """
        in_format = self.input_audio_format
        out_format = self.output_audio_format
        if keep_audio_from is not None and isinstance(keep_audio_from.audio, RealtimeAudioConfig):
            audio_now = keep_audio_from.audio
            if in_format is None and isinstance(audio_now.input, RealtimeAudioConfigInput):
                fmt = audio_now.input.format
                in_format = None if fmt is UNSET else fmt
            if out_format is None and isinstance(audio_now.output, RealtimeAudioConfigOutput):
                fmt_out = audio_now.output.format
                out_format = None if fmt_out is UNSET else fmt_out
        audio_in: dict[str, Any] = {}
        if in_format is not None:
            audio_in["format"] = in_format
        if self.turn_detection is not UNSET:
            audio_in["turn_detection"] = self.turn_detection
        if self.transcription is not UNSET:
            audio_in["transcription"] = self.transcription
        audio_out: dict[str, Any] = {}
        if out_format is not None:
            audio_out["format"] = out_format
        if self.voice is not None and keep_audio_from is None:
            audio_out["voice"] = self.voice
        fields: dict[str, Any] = {
            "type": "realtime",
            "instructions": self.render_instructions(session),
            "tools": list(tools)
            if tools is not None
            else [*(t.definition() for t in self.all_tools()), *self.hosted_tools],
        }
        if audio_in or audio_out:
            fields["audio"] = RealtimeAudioConfig(
                input=RealtimeAudioConfigInput(**audio_in) if audio_in else UNSET,
                output=RealtimeAudioConfigOutput(**audio_out) if audio_out else UNSET,
            )
        if self.output_modalities is not None:
            fields["output_modalities"] = list(self.output_modalities)
        if self.max_output_tokens is not None:
            fields["max_output_tokens"] = self.max_output_tokens
        if self.tool_choice is not None:
            fields["tool_choice"] = self.tool_choice
        return RealtimeSessionCreateRequest(**fields)

    # --- hooks (override any; each runs in the hook runner, never on the reader) ----

    async def on_session_started(self, session: Session) -> None:
        """The session is configured and ready."""

    async def on_user_transcript(self, session: Session, text: str) -> None:
        """The final transcript of a user turn arrived."""

    async def on_response_done(self, session: Session, response: RealtimeResponse) -> None:
        """A response ended (any status)."""

    async def on_tool_call(self, session: Session, name: str, arguments: str) -> None:
        """A tool is about to run with these (JSON) arguments."""

    async def on_interrupted(self, session: Session, event: Interrupted) -> None:
        """The user barged in over the assistant."""

    async def on_error(self, session: Session, error: RealtimeError) -> None:
        """The server reported an error; the session goes on."""

    async def approve_tool_call(self, request: ApprovalRequest) -> bool | Decision | None:
        """Decides a call that needs approval; ``None`` leaves it to the application.

        Runs in the call's own task, so it may take its time (within the deadline).
        """
        return None

    async def answer_elicitation(self, request: ElicitationRequest) -> ElicitationAnswer | None:
        """Answers a tool's question for the user (an MCP server's elicitation).

        Override it to answer (``ElicitationAnswer("accept", {...})``), decline
        or cancel; ``None`` leaves the question to the application. Only when
        an agent overrides it (or the application says it answers, with
        ``open_session(elicitation=True)``) are MCP servers told that the
        session can be asked at all. It must answer by ``request.deadline``.
        """
        return None

    @property
    def answers_elicitations(self) -> bool:
        """Whether this agent's class overrides :meth:`answer_elicitation`."""
        return type(self).answer_elicitation is not Agent.answer_elicitation


def _transfer(target: Agent) -> Callable[[], Awaitable[Agent]]:
    """A handoff tool's function: it takes nothing and returns its target."""

    async def transfer() -> Agent:
        return target

    return transfer
