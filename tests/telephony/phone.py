"""What the telephony tests share: the receptionist, the engine's rules and ears, and speech.

The engine runs with real ears (pocketsphinx in grammar mode), a per-event
latency (so a long reply is still streaming when the caller barges in), and
rules that greet, answer with a tool, read an account number from the
keypad, and say goodbye before ending the call.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from types import MappingProxyType

import attrs
import numpy as np
import trio

from framework.audio import pcm16_to_ulaw
from framework.engine import Engine, Rules
from framework.protocol import AudioTranscription
from framework.runtime import AssistantMessage, Session, SessionEvent
from framework.telephony import PhoneAgent, PhoneCall, current_phone_call
from framework.tools import tool
from plugins.speech import EspeakSynthesizer, PocketsphinxTranscriber

LATENCY_MS = 20
"""Before every event the engine sends: a long reply streams for seconds."""
AUTH_TOKEN = "twilio-test-auth-token"
GREETING = "Thanks for calling Acme Dental. How can I help?"
HOURS = "What are your opening hours"
SERVICES = "Tell me about your services"
ACCOUNT = "I want to check my account"
BYE = "Thank you that is all goodbye"
TRANSFER = "Put me through to the front desk"
PHRASES = [HOURS, SERVICES, ACCOUNT, BYE, TRANSFER, "Hello there"]
SERVICES_ANSWER = (
    "We offer check ups, cleaning, fillings, crowns, bridges, implants, whitening, "
    "braces for children and adults, emergency appointments on weekdays and weekends, "
    "and a friendly team that will explain every step before anything is done."
)
GOODBYE = "Goodbye and thanks for calling."
FRONT_DESK = "sip:frontdesk@dental.example"

RULES = f"""
greeting = "{GREETING}"
fallback = "Sorry, I did not catch that."

[[rule]]
when = "opening hours"
call = "opening_hours"

[[rule]]
after = "opening_hours"
say = "We are open {{output}}."

[[rule]]
when = "services"
say = "{SERVICES_ANSWER}"

[[rule]]
when = "check my account"
say = "Please type your account number and then the hash key."
call = "read_account_number"

[[rule]]
after = "read_account_number"
say = "Thank you, account {{output}}."

[[rule]]
when = "front desk"
say = "Let me put you through to the front desk."
call = "transfer_call"
args = {{ to = "front desk" }}

[[rule]]
when = "goodbye"
say = "{GOODBYE}"
call = "end_call"
"""


class Receptionist(PhoneAgent):
    """The dental practice's receptionist."""

    def instructions(self, session: Session | None = None) -> str:  # type: ignore[override]
        """The instructions name the caller: the call is there while they are rendered."""
        call = current_phone_call()
        return f"You answer the phone for Acme Dental. The caller is {call and call.caller}."

    greeting = GREETING
    transcription = AudioTranscription(model="gpt-4o-mini-transcribe")
    transfer_targets = MappingProxyType({"front desk": FRONT_DESK})

    @tool
    async def opening_hours(self) -> str:
        """The practice's opening hours."""
        return "from nine to five"

    @tool(timeout=30)
    async def read_account_number(self) -> str:
        """Reads the caller's account number from the keypad."""
        digits = await self.call.collect_digits(end="#", key_timeout=10)
        return digits or "none"


@cache
def ears() -> PocketsphinxTranscriber:
    """The engine's ears, loaded once per test process."""
    transcriber = PocketsphinxTranscriber(grammar=PHRASES)
    transcriber.load()
    return transcriber


def engine() -> Engine:
    """The engine the calls reach: the rules, the ears, the latency."""
    return Engine(rules=Rules.from_toml(RULES), transcriber=ears(), latency_ms=LATENCY_MS)


@cache
def spoken(text: str, *, silence_ms: int = 900) -> bytes:
    """G.711 mu-law at 8 kHz: the caller saying ``text``, then silence to end the turn."""
    voice = EspeakSynthesizer().synthesize_blocking(text, rate=8000, voice="alloy")
    pause = np.zeros(silence_ms * 8, dtype=np.int16)
    samples = np.concatenate([pause[:800], voice, pause]).astype("<i2")
    return pcm16_to_ulaw(samples.tobytes())


@attrs.define
class Heard:
    """What the test's ``on_call`` saw of each call's session."""

    events: list[SessionEvent] = attrs.Factory(list)
    calls: list[PhoneCall] = attrs.Factory(list)
    changed: trio.Event = attrs.Factory(trio.Event)

    async def on_call(self, call: PhoneCall) -> None:
        self.calls.append(call)
        assert call.session is not None
        async for event in call.session:
            self.events.append(event)
            self.changed.set()
            self.changed = trio.Event()

    async def wait_for(
        self, check: Callable[[SessionEvent], bool], *, after: int = 0
    ) -> SessionEvent:
        """The first event from index ``after`` on that passes ``check``, once it comes."""
        seen = after
        while True:
            for event in self.events[seen:]:
                if check(event):
                    return event
            seen = len(self.events)
            changed = self.changed
            await changed.wait()


def said(text: str) -> Callable[[SessionEvent], bool]:
    return lambda e: isinstance(e, AssistantMessage) and text in e.text
