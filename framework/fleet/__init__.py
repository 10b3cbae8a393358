"""Many worker processes, on many machines, serving calls through Redis Streams.

The control plane is Redis (or Valkey) through ``coredis``; audio never
crosses it. ``_schema`` names the keys and the records every role shares;
``_lag`` measures a worker's event-loop lag for its heartbeat.
"""

from ._lag import LoopLag as LoopLag
from ._schema import DEFAULT_PREFIX as DEFAULT_PREFIX
from ._schema import JOB_GROUP as JOB_GROUP
from ._schema import AttachJob as AttachJob
from ._schema import ControlMessage as ControlMessage
from ._schema import FleetKeys as FleetKeys
from ._schema import WorkerBeat as WorkerBeat
from ._schema import dump as dump
from ._schema import load as load
