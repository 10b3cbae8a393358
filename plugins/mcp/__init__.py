"""Local MCP servers as a session's function tools, through the ``mcp`` SDK on trio.

``McpServer.stdio(...)``, ``McpServer.http(...)`` and ``McpServer.in_process(...)``
are plugins: put them in an agent's ``plugins``. ``McpPlugin`` is the installed
``mcp`` plugin, which opens the servers of an ``mcpServers`` config file.

This package is the only part of Cantata that imports ``mcp``.
"""

from ._connection import McpServerError as McpServerError
from ._connection import McpToolError as McpToolError
from ._plugin import CONFIG_ENV as CONFIG_ENV
from ._plugin import McpPlugin as McpPlugin
from ._plugin import parse_config as parse_config
from ._server import ApprovalMode as ApprovalMode
from ._server import ApprovalSetting as ApprovalSetting
from ._server import McpOptions as McpOptions
from ._server import McpServer as McpServer
from ._server import McpToolAnnotations as McpToolAnnotations
from ._server import render_result as render_result
