"""The local Realtime engine: a protocol-faithful server that runs offline.

It speaks the server side of the same protocol as the hosted API, over a real
WebSocket (``ws://127.0.0.1:PORT/v1/realtime``), with the same session,
conversation, input-buffer, response, function-call and error semantics, so
that every bot, example and test runs without a key or a network. What it
*says* comes from a pluggable brain (by default a deterministic scripted model
driven by a rules file), its ears and voice from pluggable transcribers and
synthesizers. For hosted MCP tools it is the MCP client, through an injected
:class:`HostedMcpClient` (the MCP plugin's, over streamable HTTP). It depends
on ``framework.protocol`` and ``framework.audio`` only: its parts are given to
it (``Engine(brain=..., mcp_client=...)``), never looked up among plugins.
Plugins use only the names exported here.
"""

from ._audio import Samples as Samples
from ._audio import WireFormat as WireFormat
from ._brain import Brain as Brain
from ._brain import BrainError as BrainError
from ._brain import BrainOutput as BrainOutput
from ._brain import BrainRequest as BrainRequest
from ._brain import CallFunction as CallFunction
from ._brain import CallMcp as CallMcp
from ._brain import Say as Say
from ._brain import ScriptedBrain as ScriptedBrain
from ._brain import latest_user_text as latest_user_text
from ._coerce import ArgumentError as ArgumentError
from ._coerce import coerce as coerce
from ._conversation import ConversationLimits as ConversationLimits
from ._conversation import ConversationStatistics as ConversationStatistics
from ._hosted_mcp import TIMED_OUT as TIMED_OUT
from ._hosted_mcp import UNREACHABLE as UNREACHABLE
from ._hosted_mcp import HostedMcpClient as HostedMcpClient
from ._hosted_mcp import McpCallResult as McpCallResult
from ._hosted_mcp import McpListError as McpListError
from ._hosted_mcp import NoMcpClient as NoMcpClient
from ._http import Receive as Receive
from ._http import Scope as Scope
from ._http import Send as Send
from ._http import answer_lifespan as answer_lifespan
from ._http import respond as respond
from ._http import server_config as server_config
from ._input import InputStatistics as InputStatistics
from ._network import Link as Link
from ._network import LinkLimits as LinkLimits
from ._network import serve_links as serve_links
from ._operator import OperatorClient as OperatorClient
from ._operator import OperatorError as OperatorError
from ._operator import WebhookDelivery as WebhookDelivery
from ._operator import new_webhook_secret as new_webhook_secret
from ._operator import post_webhook as post_webhook
from ._operator import webhook_headers as webhook_headers
from ._rules import DEFAULT_RULES as DEFAULT_RULES
from ._rules import Rule as Rule
from ._rules import Rules as Rules
from ._rules import RulesError as RulesError
from ._server import Engine as Engine
from ._server import RunningEngine as RunningEngine
from ._server import described as described
from ._server import open_engine as open_engine
from ._server import serve_engine as serve_engine
from ._session import Connection as Connection
from ._session import Disconnected as Disconnected
from ._session import EngineSession as EngineSession
from ._session import SessionOptions as SessionOptions
from ._session import SessionStatistics as SessionStatistics
from ._shared import SharedStoreError as SharedStoreError
from ._speech import NoTranscriber as NoTranscriber
from ._speech import Synthesizer as Synthesizer
from ._speech import ToneSynthesizer as ToneSynthesizer
from ._speech import Transcriber as Transcriber
from ._speech import TranscriptionUnavailable as TranscriptionUnavailable
from ._timers import MAX_SESSION_S as MAX_SESSION_S
from ._vad import ClassifierFactory as ClassifierFactory
from ._vad import EnergyClassifier as EnergyClassifier
from ._vad import FrameClassifier as FrameClassifier
from ._vad import VoiceActivityDetector as VoiceActivityDetector
