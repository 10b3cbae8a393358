"""The agent on the phone: G.711 audio, a greeting, and tools to hang up and transfer.

:class:`PhoneAgent` is an :class:`~framework.Agent` set up for calls: its
audio is G.711 mu-law both ways (what Twilio carries, so nothing is
resampled; on SIP the call's codec is the server's business and no format is
sent), it greets the caller once connected, and it offers the model two
tools: ``end_call``, which hangs up once the caller has heard the goodbye,
and ``transfer_call``, which hands the caller to one of the agent's
``transfer_targets`` (the model picks a name; the numbers stay in code). Its
:attr:`PhoneAgent.call` is the call in progress, which instructions written
as a method can use::

    class Receptionist(PhoneAgent):
        greeting = "Thanks for calling Acme Dental. How can I help?"
        transfer_targets = {"front desk": "tel:+14155550123"}

        def instructions(self, session):
            return f"You answer the phone for Acme Dental. The caller is {self.call.caller}."
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from framework.agent import Agent
from framework.protocol import (
    UNSET,
    AudioPCMU,
    RealtimeAudioConfig,
    RealtimeAudioConfigInput,
    RealtimeAudioConfigOutput,
    RealtimeResponseCreateParams,
    RealtimeSessionCreateRequest,
    RealtimeToolsConfigUnion,
)
from framework.runtime import AgentLike
from framework.tools import FunctionTool, tool

from ._call import PhoneCall, current_phone_call

if TYPE_CHECKING:
    from framework.runtime import Session

END_CALL_TIMEOUT_S = 300.0
"""How long ``end_call`` may wait for the goodbye to be heard before it gives up."""


class PhoneAgent(Agent):
    """An agent that answers phone calls (see the module docstring).

    Attributes (besides :class:`~framework.Agent`'s):
        greeting: what the agent says first, once the caller is connected
            (``None``: it waits for the caller to speak).
        transfer_targets: the people or queues the caller can be handed to,
            by the name the model uses (``{"sales": "tel:+14155550123"}``);
            none, and there is no ``transfer_call`` tool.
    """

    input_audio_format = AudioPCMU(type="audio/pcmu")
    output_audio_format = AudioPCMU(type="audio/pcmu")
    greeting: str | None = None
    transfer_targets: Mapping[str, str] = {}

    def __init__(
        self,
        *,
        greeting: str | None = None,
        transfer_targets: Mapping[str, str] | None = None,
        tools: Sequence[FunctionTool] = (),
        **settings: Any,
    ) -> None:
        if greeting is not None:
            self.greeting = greeting
        if transfer_targets is not None:
            self.transfer_targets = dict(transfer_targets)
        for name, target in self.transfer_targets.items():
            if not target.lower().startswith(("tel:", "sip:", "sips:")):
                raise ValueError(
                    f"{type(self).__name__}: transfer target {name!r} is {target!r}; "
                    "use tel:+14155550123 or sip:user@host"
                )
        extra = [self._transfer_tool()] if self.transfer_targets else []
        super().__init__(tools=[*tools, *extra], **settings)

    @property
    def call(self) -> PhoneCall:
        """The call this agent is answering now.

        Raises:
            RuntimeError: outside a call's session.
        """
        call = current_phone_call()
        if call is None:
            raise RuntimeError(
                f"{self.name} is not on a call: PhoneAgent.call is only there in the "
                "session of a call (serve it with PhoneServer)"
            )
        return call

    # --- the tools -------------------------------------------------------------------

    @tool(timeout=END_CALL_TIMEOUT_S)
    async def end_call(self) -> str:
        """Hang up the phone call. Say goodbye first: the call ends once the caller has heard it."""
        await self.call.hang_up()
        return "The call has ended."

    def _transfer_tool(self) -> FunctionTool:
        names = list(self.transfer_targets)

        async def transfer(arguments: dict[str, Any]) -> str:
            name = arguments.get("to")
            target = self.transfer_targets.get(name) if isinstance(name, str) else None
            if target is None:
                return f"There is nobody called {name!r} to transfer to; choose one of {names}."
            await self.call.transfer(target)
            return f"The caller is being transferred to {name}."

        return FunctionTool.from_schema(
            "transfer_call",
            "Transfer the caller to a person or team. Tell the caller first: the transfer "
            "happens once they have heard you.",
            {
                "type": "object",
                "properties": {
                    "to": {"type": "string", "enum": names, "description": "who to transfer to"}
                },
                "required": ["to"],
                "additionalProperties": False,
            },
            transfer,
            timeout=END_CALL_TIMEOUT_S,
        )

    # --- configuration -----------------------------------------------------------------

    def session_config(
        self,
        *,
        keep_audio_from: RealtimeSessionCreateRequest | None = None,
        session: Session | None = None,
        tools: Sequence[RealtimeToolsConfigUnion] | None = None,
    ) -> RealtimeSessionCreateRequest:
        """The agent's configuration; on a SIP call without audio formats (the call's codec
        is negotiated by SIP, not by the session)."""
        config = super().session_config(
            keep_audio_from=keep_audio_from, session=session, tools=tools
        )
        call = current_phone_call()
        if (
            call is None
            or call.carrier != "sip"
            or not isinstance(config.audio, RealtimeAudioConfig)
        ):
            return config
        return _without_formats(config)


def _without_formats(config: RealtimeSessionCreateRequest) -> RealtimeSessionCreateRequest:
    audio = config.audio
    assert isinstance(audio, RealtimeAudioConfig)
    audio_in = audio.input
    audio_out = audio.output
    if isinstance(audio_in, RealtimeAudioConfigInput):
        audio_in = attrs.evolve(audio_in, format=UNSET)
    if isinstance(audio_out, RealtimeAudioConfigOutput):
        audio_out = attrs.evolve(audio_out, format=UNSET)
    return attrs.evolve(config, audio=RealtimeAudioConfig(input=audio_in, output=audio_out))


def greeting_of(agent: AgentLike) -> RealtimeResponseCreateParams | None:
    """The response that greets the caller, for an agent that has a greeting."""
    greeting = getattr(agent, "greeting", None)
    if not isinstance(greeting, str) or not greeting:
        return None
    render = getattr(agent, "render_instructions", None)
    base = render() if callable(render) else ""
    return RealtimeResponseCreateParams(
        instructions=f"{base}\n\nThe caller has just been connected. Greet them with exactly "
        f"these words: {greeting}".strip()
    )
