"""The playground page in a real headless Chromium, against the local engine over loopback.

Playwright drives the system's Chromium (the browser Playwright would download
cannot be fetched here). Every wait is bounded by Playwright's timeouts, and
each test saves a screenshot under ``.screenshots/`` (``CANTATA_SCREENSHOTS``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from framework import Agent, tool
from framework.apps.runner import load_agent
from framework.audio import write_wav
from framework.plugin import Contribution, Plugin, PluginContext
from framework.protocol import AudioTranscription, ServerVad
from framework.runtime import ElicitationRequest
from framework.tools import FunctionTool

from .serving import CHROMIUM_ARGS, ROOT, SCREENSHOTS, chromium, playground_thread

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')"
)

WAIT_MS = 15_000
RULES = """
fallback = "Sorry, I can only talk about the weather."

[[rule]]
when = "weather in (?P<city>[A-Za-z ]+?)[?.!]*$"
call = "get_weather"
args = { city = "{city}" }

[[rule]]
after = "get_weather"
say = "In {city} it is {output}. That is all I know about {city} today, and I will say it slowly."

[[rule]]
when = "favourite colour"
call = "ask_colour"

[[rule]]
after = "ask_colour"
say = "You said {output}."

[[rule]]
when = "umbrella delivery to (?P<address>[^.?!]+)"
call = "book_umbrella_delivery"
args = { address = "{address}" }

[[rule]]
after = "book_umbrella_delivery"
say = "Done: {output}."
"""


class WeatherBot(Agent):
    instructions = "You help people with the weather. Be brief."
    transcription = AudioTranscription(model="gpt-4o-mini-transcribe")
    turn_detection = ServerVad(type="server_vad", silence_duration_ms=500)

    @tool
    async def get_weather(self, city: str) -> str:
        """Current weather for a city.

        Args:
            city: the city, as the user named it.
        """
        return {"paris": "sunny and 21 degrees"}.get(city.strip().lower(), "cloudy")

    @tool(needs_approval=True, timeout=30)
    async def book_umbrella_delivery(self, address: str) -> str:
        """Sends an umbrella to the user.

        Args:
            address: where to deliver it.
        """
        return f"an umbrella is on its way to {address}"


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    """One Playwright per module: its sync API allows only one at a time in a thread."""
    with playwright_api.sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Any) -> Iterator[Any]:
    launched = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
    yield launched
    launched.close()


def _page(browser: Any, url: str) -> Any:
    page = browser.new_page()
    page.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    page.goto(url)
    page.wait_for_selector("#text:enabled")
    return page


def _say(page: Any, text: str) -> None:
    page.fill("#text", text)
    page.press("#text", "Enter")


def _events(page: Any, kind: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = page.evaluate(
        "kind => window.cantataPlayground.events.filter(e => e.kind === kind).map(e => e.data)",
        kind,
    )
    return found


def _deliver(page: Any, place: str) -> Any:
    """Asks for an umbrella delivery (a tool that needs approval); the approval card."""
    _say(page, f"Please arrange an umbrella delivery to {place}")
    return page.wait_for_selector(".approval:last-child")


def _shot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def test_a_typed_turn_a_tool_call_an_approval_clicked_and_the_metrics(browser: Any) -> None:
    with playground_thread(WeatherBot(), RULES) as url:
        page = _page(browser, url)
        assert page.inner_text("#agent") == "WeatherBot"
        assert "get_weather" in page.inner_text("#backend")

        _say(page, "What is the weather in Paris?")
        page.wait_for_selector(".assistant >> text=sunny and 21 degrees")
        call = page.wait_for_selector(".tool >> text=get_weather")
        assert '"city":"Paris"' in call.inner_text().replace(" ", "")
        page.wait_for_selector(".tool .status >> text=ok → sunny and 21 degrees")
        # The turn is measured once its audio has played out on the page.
        page.wait_for_selector("#turns tbody tr")

        _say(page, "Please arrange an umbrella delivery to 5 Rue Cler")
        card = page.wait_for_selector(".approval")
        assert "book_umbrella_delivery" in card.inner_text()
        assert "s left" in card.inner_text()  # the countdown runs
        _shot(page, "playground-approval")
        card.query_selector(".yes").click()
        page.wait_for_selector(".approval >> text=approved")
        page.wait_for_selector(".assistant >> text=an umbrella is on its way to 5 Rue Cler")

        # One row per turn, the first audio measured, the tool with its approval wait.
        page.wait_for_selector("#turns tbody tr:nth-child(2)")
        rows = page.query_selector_all("#turns tbody tr")
        cells = [[td.inner_text() for td in row.query_selector_all("td")] for row in rows]
        assert [c[0] for c in cells] == ["1", "2"]
        assert cells[0][2].endswith(" ms") and cells[1][2].endswith(" ms")
        assert "get_weather" in cells[0][5]
        assert "book_umbrella_delivery" in cells[1][5] and "approval" in cells[1][5]
        assert "2 turns" in page.inner_text("#totals")

        # The raw event log holds the server's events, and the filter narrows it.
        log = page.query_selector_all("#log li")
        assert len(log) > 20
        page.fill("#filter", "function_call_arguments.done")
        shown = [li for li in page.query_selector_all("#log li") if li.is_visible()]
        assert len(shown) == 2
        assert all("function_call_arguments.done" in li.inner_text() for li in shown)
        page.fill("#filter", "")
        _shot(page, "playground-typed")
        assert page.errors == []


def test_a_rejection_clicked_reaches_the_model(browser: Any) -> None:
    with playground_thread(WeatherBot(), RULES) as url:
        page = _page(browser, url)
        _deliver(page, "the moon").query_selector(".no").click()
        page.wait_for_selector(".approval >> text=rejected")
        finished = page.wait_for_selector(".tool .status >> text=rejected")
        assert "the user declined" in finished.inner_text()
        # The session as the page saw it, downloaded as JSON.
        with page.expect_download() as download:
            page.click("#download")
        saved = json.loads(Path(download.value.path()).read_text())
        kinds = [e.get("kind") for e in saved["events"]]
        assert "ApprovalRequested" in kinds and "ToolCallFinished" in kinds
        assert saved["session_id"].startswith("sess_")
        assert page.errors == []


def test_an_ended_session_offers_its_recording(browser: Any, tmp_path: Path) -> None:
    from plugins.recorder import Recorder

    with playground_thread(WeatherBot(), RULES, plugins=[Recorder(tmp_path)]) as url:
        page = _page(browser, url)
        _say(page, "What is the weather in Paris?")
        page.wait_for_selector(".assistant >> text=sunny and 21 degrees")
        page.click("#end")
        page.wait_for_selector("#state >> text=ended")
        links = page.query_selector_all("a[download]")
        names = sorted(a.get_attribute("download") for a in links)
        assert [n.rsplit(".", 1)[1] for n in names] == ["json", "wav"]
        wav = page.request.get(url + "recordings/" + names[1])
        assert wav.status == 200 and wav.body()[:4] == b"RIFF"
        assert wav.headers["content-disposition"] == "attachment"
        report = page.request.get(url + "recordings/" + names[0]).json()
        assert "get_weather" in str(report["tool_calls"])
        assert page.request.get(url + "recordings/other.wav").status == 404


class Asking(Plugin):
    """A plugin whose tool asks the user a question through the session."""

    name = "asking"

    @asynccontextmanager
    async def open_in(self, context: PluginContext) -> AsyncIterator[Contribution]:
        async def ask(arguments: dict[str, object]) -> str:
            assert context.elicit is not None, "the playground answers questions"
            answer = await context.elicit(
                ElicitationRequest(
                    source=self.name,
                    message="Which colour?",
                    schema={"type": "object", "properties": {"colour": {"type": "string"}}},
                )
            )
            return f"{answer.action} {dict(answer.content or {})}"

        tool = FunctionTool.from_schema("ask_colour", "Asks for a colour.", {"type": "object"}, ask)
        yield Contribution(tools=lambda: [tool])


def test_always_allow_approves_the_tool_s_later_calls_too(browser: Any) -> None:
    with playground_thread(WeatherBot(), RULES) as url:
        page = _page(browser, url)
        _deliver(page, "the office").query_selector(".always").click()
        page.wait_for_selector(".approval >> text=from now on")
        page.wait_for_selector(".assistant >> text=on its way to the office")
        _say(page, "Please arrange an umbrella delivery to the station")
        page.wait_for_selector(".assistant >> text=on its way to the station")
        assert len(page.query_selector_all(".approval")) == 1  # the second call asked nobody
        assert len(_events(page, "ApprovalRequested")) == 1
        assert page.errors == []


def test_a_tool_s_question_is_answered_in_a_form(browser: Any) -> None:
    with playground_thread(WeatherBot(), RULES, plugins=[Asking()]) as url:
        page = _page(browser, url)
        _say(page, "Guess my favourite colour")
        card = page.wait_for_selector("[data-question]")
        assert "Which colour?" in card.inner_text() and "asking asks" in card.inner_text()
        page.fill("[data-question] input[name=colour]", "teal")
        page.click("[data-question] .yes")
        page.wait_for_selector("[data-question] >> text=answered")
        page.wait_for_selector(".assistant >> text=You said accept {'colour': 'teal'}.")
        assert page.errors == []


def test_a_handoff_is_shown(browser: Any) -> None:
    triage, _ = load_agent(ROOT / "examples" / "triage_bot.py", "Triage")
    with playground_thread(triage, ROOT / "examples" / "triage_bot.toml") as url:
        page = _page(browser, url)
        _say(page, "I was charged twice")
        page.wait_for_selector(".note >> text=handoff: Triage → Billing")
        page.wait_for_selector(".assistant >> text=Billing here.")
        assert page.errors == []


def test_direct_mode_talks_to_the_engine_with_an_ephemeral_key(browser: Any) -> None:
    with playground_thread(WeatherBot(), RULES, api_key="sk-engine-secret") as url:
        page = _page(browser, url + "?direct")
        assert "ephemeral key" in page.inner_text("#backend")
        _say(page, "Hello there")
        page.wait_for_selector(".assistant >> text=Sorry, I can only talk about the weather.")
        # The page spoke to the engine itself: its log holds the engine's events.
        page.wait_for_selector("#log li[data-type='response.done']")
        # The engine's key never reached the page; the ephemeral one did the work.
        seen = page.content() + str(page.evaluate("window.cantataPlayground.events"))
        assert "sk-engine-secret" not in seen
        _shot(page, "playground-direct")
        assert page.errors == []


def test_the_page_stays_usable_at_phone_width_and_by_keyboard(browser: Any) -> None:
    with playground_thread(WeatherBot(), RULES) as url:
        page = browser.new_page(viewport={"width": 390, "height": 844})
        page.set_default_timeout(WAIT_MS)
        page.goto(url)
        page.wait_for_selector("#text:enabled")
        # No sideways scrolling at phone width.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        # Keyboard only: focus the text box, type, Enter.
        page.focus("#text")
        page.keyboard.type("What is the weather in Paris?")
        page.keyboard.press("Enter")
        page.wait_for_selector(".assistant >> text=sunny")
        assert page.inner_text("#state") in ("listening", "speaking")
        _shot(page, "playground-phone")


WAV_TEXT = "What is the weather in Paris"


@pytest.fixture(scope="module")
def spoken_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The user's question, spoken, then a pause shorter than the reply (the file loops)."""
    speech = pytest.importorskip("plugins.speech", reason="the speech extra is not installed")
    import trio

    voice = speech.EspeakSynthesizer()
    audio = trio.run(lambda: voice.synthesize(WAV_TEXT, rate=24000, voice="ash"))
    pause = np.zeros(int(24000 * 1.6), dtype=np.int16)
    path = tmp_path_factory.mktemp("speech") / "question.wav"
    write_wav(path, np.concatenate([pause, audio, pause]), 24000)
    return path


def test_a_spoken_turn_answered_with_audio_and_a_barge_in_truncated(
    spoken_wav: Path, playwright: Any
) -> None:
    speech = pytest.importorskip("plugins.speech", reason="the speech extra is not installed")
    executable = chromium()
    engine = {
        "transcriber": speech.PocketsphinxTranscriber(grammar=[WAV_TEXT]),
        "synthesizer": speech.EspeakSynthesizer(),
        "vad": speech.SileroVad(),
    }
    # Chromium's fake microphone plays the WAV file, over and over: the second
    # time round the user speaks over the assistant's reply.
    args = [*CHROMIUM_ARGS, f"--use-file-for-fake-audio-capture={spoken_wav}"]
    with playground_thread(WeatherBot(), RULES, **engine) as url:
        browser = playwright.chromium.launch(executable_path=executable, args=args)
        try:
            page = _page(browser, url)
            page.click("#mic")
            page.wait_for_selector('#mic[aria-pressed="true"]')
            page.wait_for_selector(".user >> text=/weather in paris/i", timeout=30_000)
            page.wait_for_selector(".tool .status >> text=ok → sunny and 21 degrees")
            # (On a slow machine the user may speak again before the reply plays:
            # that interruption cuts nothing; the one that matters cuts a reply.)
            page.wait_for_selector("text=/barge-in.*truncated there/", timeout=30_000)
            _shot(page, "playground-spoken")
            interrupted = next(i for i in _events(page, "Interrupted") if i["truncated"])
            messages = {m["item_id"]: m for m in _events(page, "AssistantMessage")}
            spoken = messages[interrupted["item_id"]]
            # The reply was cut where the page had played it: some, not all of it.
            assert interrupted["truncated"] is True
            assert 0 < interrupted["played_ms"] < spoken["audio_ms"]
            assert any(t["final"] for t in _events(page, "UserTranscript"))
            assert page.errors == []
        finally:
            browser.close()


def test_push_to_talk_sends_audio_only_while_held_and_commits_on_release(
    spoken_wav: Path, playwright: Any
) -> None:
    speech = pytest.importorskip("plugins.speech", reason="the speech extra is not installed")
    engine = {
        "transcriber": speech.PocketsphinxTranscriber(grammar=[WAV_TEXT]),
        "synthesizer": speech.EspeakSynthesizer(),
        "vad": speech.SileroVad(),
    }
    # The file plays once, from when the microphone opens.
    args = [*CHROMIUM_ARGS, f"--use-file-for-fake-audio-capture={spoken_wav}%noloop"]
    with playground_thread(WeatherBot(), RULES, **engine) as url:
        browser = playwright.chromium.launch(executable_path=chromium(), args=args)
        try:
            page = _page(browser, url)
            page.select_option("#mode", "push-to-talk")
            page.wait_for_selector(
                "#log li[data-type='session.updated'] >> text=\"turn_detection\":null"
            )
            page.click("#mic")
            page.wait_for_selector('#mic[aria-pressed="true"]')
            page.hover("#ptt")
            page.mouse.down()
            page.wait_for_timeout(5_500)  # the user holds the button through the question
            page.mouse.up()
            page.wait_for_selector(".user >> text=/weather in paris/i")
            page.wait_for_selector(".assistant >> text=sunny and 21 degrees")
            # No VAD in this mode: the turn was the release's commit.
            assert _events(page, "UserSpeechStarted") == []
            assert page.errors == []
        finally:
            browser.close()
