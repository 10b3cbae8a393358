"""The network, seen from the client side: the Realtime WebSocket connection.

This is the only package that dials out. ``open_connection`` reaches the
hosted API, any compatible base URL (Azure-style deployments included) and
the local engine alike.
"""

from ._connection import (
    DEFAULT_MODEL as DEFAULT_MODEL,
)
from ._connection import (
    HOSTED_URL as HOSTED_URL,
)
from ._connection import (
    ConnectionClosed as ConnectionClosed,
)
from ._connection import (
    HandshakeRefused as HandshakeRefused,
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
