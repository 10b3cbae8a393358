"""Phone calls: Twilio Media Streams and SIP through the Realtime Calls API.

A call is a session whose audio comes and goes through a carrier:

* **Twilio Media Streams** (:mod:`._twilio`, :mod:`._media`, :mod:`._sink`):
  the voice webhook is answered with TwiML that connects the call to a
  WebSocket, and the session, opened as the webhook arrives, hears and
  speaks G.711 mu-law as Twilio carries it (nothing is resampled). What the
  caller heard comes from Twilio's ``mark`` echoes; barge-in sends ``clear``.
* **SIP** (:mod:`._sip`, :mod:`._webhooks`): a signed ``realtime.call.incoming``
  webhook is verified and handled once, the call accepted with the agent's
  configuration (or rejected, busy) and a session attached by ``call_id``;
  transfers are ``refer``, hanging up ``hangup``.

:class:`PhoneServer` (:mod:`._server`) serves both on one port, many calls at
once. :class:`PhoneAgent` (:mod:`._agent`) is an agent set up for calls, with
``end_call`` (which waits until the goodbye has been heard) and
``transfer_call`` tools; its :attr:`PhoneAgent.call` is the
:class:`PhoneCall` (:mod:`._call`): the caller's number, the carrier's
metadata, the keypad (:meth:`PhoneCall.collect_digits`), hanging up and
transferring. :func:`dial` (:mod:`._carrier`) is a simulated Twilio, so all of
it runs offline; the local engine's operator interface rings simulated SIP
calls.
"""

from ._agent import PhoneAgent as PhoneAgent
from ._agent import greeting_of as greeting_of
from ._asgi import HttpRefusal as HttpRefusal
from ._asgi import Route as Route
from ._asgi import route_request as route_request
from ._call import DTMF_KEYS as DTMF_KEYS
from ._call import CallLeg as CallLeg
from ._call import PhoneCall as PhoneCall
from ._call import current_phone_call as current_phone_call
from ._carrier import DialError as DialError
from ._carrier import HeardClear as HeardClear
from ._carrier import TwilioCaller as TwilioCaller
from ._carrier import dial as dial
from ._carrier import open_media_stream as open_media_stream
from ._inbound import sip_webhook as sip_webhook
from ._inbound import twilio_form as twilio_form
from ._inbound import url_of as url_of
from ._media import Clear as Clear
from ._media import Connected as Connected
from ._media import Dtmf as Dtmf
from ._media import Mark as Mark
from ._media import Media as Media
from ._media import MediaStreamError as MediaStreamError
from ._media import Start as Start
from ._media import Stop as Stop
from ._media import StreamMessage as StreamMessage
from ._media import dump_message as dump_message
from ._media import parse_message as parse_message
from ._server import PhoneServer as PhoneServer
from ._server import open_phone_server as open_phone_server
from ._server import serve_phone as serve_phone
from ._sink import FRAME_BYTES as FRAME_BYTES
from ._sink import LEAD_MS as LEAD_MS
from ._sink import MarkedSink as MarkedSink
from ._sip import PlayoutClock as PlayoutClock
from ._sip import SipLeg as SipLeg
from ._sip import call_from_event as call_from_event
from ._twilio import TwilioLeg as TwilioLeg
from ._twilio import signature_for as signature_for
from ._twilio import signature_ok as signature_ok
from ._twilio import twiml_busy as twiml_busy
from ._twilio import twiml_connect as twiml_connect
from ._webhooks import RecentDeliveries as RecentDeliveries
from ._webhooks import WebhookRefused as WebhookRefused
from ._webhooks import verify_webhook as verify_webhook
