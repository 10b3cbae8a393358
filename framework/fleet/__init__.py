"""Many worker processes, on many machines, serving calls through Redis Streams.

The control plane is Redis (or Valkey) through ``coredis``; audio never
crosses it. ``_schema`` names the keys and the records every role shares;
``_lag`` measures a worker's event-loop lag for its heartbeat; ``_ops`` serves
every role's ``/healthz`` and Prometheus ``/metrics``; ``_ingress`` turns call
webhooks into attach jobs (``cantata serve --role ingress``); ``_worker`` is a
fleet worker (``cantata worker``), ``_leases`` who owns a call and the
take-over of a dead worker's calls, ``_control`` the orders sent to a call's
owner (:func:`send_control`); ``_status`` reads a fleet's state for
``cantata fleet``.
"""

from ._control import ORDERS as ORDERS
from ._control import CallNotOwned as CallNotOwned
from ._control import ControlReader as ControlReader
from ._control import send_control as send_control
from ._ingress import FleetView as FleetView
from ._ingress import Ingress as Ingress
from ._ingress import fleet_view as fleet_view
from ._ingress import read_beats as read_beats
from ._lag import LoopLag as LoopLag
from ._leases import LEASE_TTL_S as LEASE_TTL_S
from ._leases import RENEW_EVERY_S as RENEW_EVERY_S
from ._leases import SCAN_EVERY_S as SCAN_EVERY_S
from ._ops import Ops as Ops
from ._ops import Probe as Probe
from ._ops import RedisUnreachable as RedisUnreachable
from ._ops import RoleMetrics as RoleMetrics
from ._ops import one_line as one_line
from ._ops import open_ops_server as open_ops_server
from ._ops import open_redis as open_redis
from ._ops import queue_depth as queue_depth
from ._ops import redacted as redacted
from ._ops import redis_probe as redis_probe
from ._ops import sample_queue as sample_queue
from ._ops import serve_asgi as serve_asgi
from ._ops import serve_ops as serve_ops
from ._ops import watch_loop as watch_loop
from ._schema import DEFAULT_PREFIX as DEFAULT_PREFIX
from ._schema import JOB_GROUP as JOB_GROUP
from ._schema import AttachJob as AttachJob
from ._schema import ControlMessage as ControlMessage
from ._schema import FleetKeys as FleetKeys
from ._schema import WorkerBeat as WorkerBeat
from ._schema import dump as dump
from ._schema import load as load
from ._status import CallStatus as CallStatus
from ._status import FleetStatus as FleetStatus
from ._status import WorkerStatus as WorkerStatus
from ._status import read_status as read_status
from ._worker import BEAT_TTL_S as BEAT_TTL_S
from ._worker import Worker as Worker
