"""Helpers for testing agents (and Cantata itself) without a network or a key.

* :func:`run_engine` starts the local Realtime engine in-process on a free
  loopback port, with a rules file (or rules text) for its scripted brain::

      async with run_engine(rules="examples/weather.toml") as url:
          async with open_session(MyAgent(), url=url) as session:
              ...

* :func:`engine_wire` runs an engine session in memory instead, with no socket
  at all, so a whole agent session runs on trio's ``MockClock`` (approval
  deadlines, tool timeouts and playback positions in virtual time)::

      async with engine_wire(rules=RULES) as wire:
          async with open_session(MyAgent(), connection=wire) as session:
              ...

* :func:`memory_engine` serves a new in-memory session per dial, for sessions
  that lose their connection and dial again (``Endpoint(dial=served.dial)``).

* :class:`ScriptedServer` is a server the test scripts by hand: it sends the
  server events the test gives it and records every client event, for the
  orders of events no engine produces on purpose::

      server = ScriptedServer()
      async with open_session(MyAgent(), connection=server) as session:
          await server.send(*server.function_call("get_weather", {"city": "Oslo"}))
          output = await server.expect(ConversationItemCreateEvent)

* :func:`redis_server` runs a real ``redis-server`` on a free loopback port,
  for the fleet's control plane (workers, leases, control streams)::

      with redis_server() as redis_url:
          ...
"""

from ._engine import MemoryEngine as MemoryEngine
from ._engine import MemoryWire as MemoryWire
from ._engine import engine_wire as engine_wire
from ._engine import memory_engine as memory_engine
from ._engine import run_engine as run_engine
from ._mcp import MCP_CLIENT as MCP_CLIENT
from ._mcp import InstalledMcpClient as InstalledMcpClient
from ._mcp import installed_mcp_client as installed_mcp_client
from ._redis import RedisUnavailable as RedisUnavailable
from ._redis import redis_server as redis_server
from ._scripted import ScriptedServer as ScriptedServer
