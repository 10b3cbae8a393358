"""The network, seen from the client side: the Realtime WebSocket and REST endpoints.

This is the only package that dials out. ``open_connection`` reaches the
hosted API, any compatible base URL (Azure-style deployments included) and
the local engine alike; ``open_rest_client`` does the same for client
secrets and calls.
"""

from framework.errors import ConnectionClosed as ConnectionClosed
from framework.errors import HandshakeRefused as HandshakeRefused
from framework.errors import RestError as RestError

from ._connection import (
    DEFAULT_MODEL as DEFAULT_MODEL,
)
from ._connection import (
    HOSTED_URL as HOSTED_URL,
)
from ._connection import (
    Framing as Framing,
)
from ._connection import (
    RealtimeConnection as RealtimeConnection,
)
from ._connection import (
    open_connection as open_connection,
)
from ._connection import (
    resolve_url as resolve_url,
)
from ._rest import (
    HOSTED_BASE_URL as HOSTED_BASE_URL,
)
from ._rest import (
    CallAnswer as CallAnswer,
)
from ._rest import (
    ClientSecret as ClientSecret,
)
from ._rest import (
    RestClient as RestClient,
)
from ._rest import (
    open_rest_client as open_rest_client,
)
from ._rest import (
    resolve_base_url as resolve_base_url,
)
