"""Local MCP servers in a session: tools, resources, prompts, through the ``mcp`` SDK on trio.

``McpServer.stdio(...)``, ``McpServer.http(...)`` (streamable HTTP, with OAuth
when the server asks for it: :class:`McpOAuth`), ``McpServer.sse(...)`` (the
legacy SSE transport) and ``McpServer.in_process(...)`` are plugins: put them
in an agent's ``plugins``. ``McpPlugin`` is the installed ``mcp`` plugin,
which opens the servers of an ``mcpServers`` config file.
``McpServer.client(session)`` is a server's resources and prompts for the
application (:class:`McpClient`).

This package is the only part of Cantata that imports ``mcp``.
"""

from ._auth import FileTokenStore as FileTokenStore
from ._auth import McpOAuth as McpOAuth
from ._auth import MemoryTokenStore as MemoryTokenStore
from ._auth import TokenStore as TokenStore
from ._client import McpClient as McpClient
from ._client import McpContents as McpContents
from ._client import McpPrompt as McpPrompt
from ._client import McpPromptArgument as McpPromptArgument
from ._client import McpPromptText as McpPromptText
from ._client import McpResource as McpResource
from ._client import McpResourceTemplate as McpResourceTemplate
from ._connection import server_logger as server_logger
from ._errors import McpServerError as McpServerError
from ._errors import McpToolError as McpToolError
from ._plugin import CONFIG_ENV as CONFIG_ENV
from ._plugin import McpPlugin as McpPlugin
from ._plugin import parse_config as parse_config
from ._results import convert_result as convert_result
from ._results import render_result as render_result
from ._server import ApprovalMode as ApprovalMode
from ._server import ApprovalSetting as ApprovalSetting
from ._server import McpOptions as McpOptions
from ._server import McpServer as McpServer
from ._server import PromptSpec as PromptSpec
from ._tools import McpToolAnnotations as McpToolAnnotations
