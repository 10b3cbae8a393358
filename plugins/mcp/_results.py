"""What a tool result (or a resource) becomes for the model: text, and images beside it.

A function call's output is text, so each content block is rendered as text
the model can use, and what text cannot carry travels beside it:

* text, and text resources (embedded or read), as they are;
* structured content as JSON, when the text blocks do not already say it;
* images as a :class:`~framework.tools.ToolImage` that the session adds to
  the conversation after the output (``input_image``), and a line saying so;
* audio, which a Realtime session cannot take as a tool's output, described
  (type, size, and duration for WAV);
* resource links by name, URI and type, so the model (with the resource
  tool) or the application can read them;
* binary resources described.

pydantic types stop here.
"""

from __future__ import annotations

import base64
import binascii
import io
import wave
from collections.abc import Sequence

import mcp_types
import orjson

from framework.tools import ToolImage, ToolResult

from ._errors import McpToolError


def convert_result(result: mcp_types.CallToolResult) -> ToolResult:
    """The model's view of a tool result.

    Raises:
        McpToolError: The server marked the result an error; the text is its message.
    """
    texts: list[str] = []
    images: list[ToolImage] = []
    for block in result.content:
        texts.extend(_block(block, images))
    if result.is_error:
        raise McpToolError("\n".join(texts) or "the tool failed and said nothing more")
    structured = result.structured_content
    # Servers are asked to repeat structured content as text (MCP 2025-06-18,
    # tools: structured content); it is added only when no text says it already.
    if structured is not None and not any(_says(text, structured) for text in texts):
        texts.append(orjson.dumps(structured).decode())
    return ToolResult(text="\n".join(texts), images=tuple(images))


def render_result(result: mcp_types.CallToolResult) -> str:
    """The model-visible text of a tool result (images named, not shown).

    Raises:
        McpToolError: The server marked the result an error; the text is its message.
    """
    return convert_result(result).text


def convert_contents(
    contents: Sequence[mcp_types.TextResourceContents | mcp_types.BlobResourceContents],
) -> ToolResult:
    """A read resource as the model's view: text as is, images shown, other bytes described."""
    texts: list[str] = []
    images: list[ToolImage] = []
    for part in contents:
        texts.extend(_resource(part, images))
    return ToolResult(text="\n".join(texts), images=tuple(images))


def _block(block: mcp_types.ContentBlock, images: list[ToolImage]) -> list[str]:
    if isinstance(block, mcp_types.TextContent):
        return [block.text]
    if isinstance(block, mcp_types.ImageContent):
        images.append(ToolImage(data=block.data, mime_type=block.mime_type))
        return [f"[image {len(images)}: {block.mime_type}, {_size(block.data)}; shown after this]"]
    if isinstance(block, mcp_types.AudioContent):
        return [f"[audio: {block.mime_type}, {_size(block.data)}{_duration(block.data)}]"]
    if isinstance(block, mcp_types.ResourceLink):
        return [_link(block)]
    return _resource(block.resource, images)


def _resource(
    part: mcp_types.TextResourceContents | mcp_types.BlobResourceContents,
    images: list[ToolImage],
) -> list[str]:
    if isinstance(part, mcp_types.TextResourceContents):
        return [part.text]
    mime = part.mime_type or "application/octet-stream"
    if mime.startswith("image/"):
        images.append(ToolImage(data=part.blob, mime_type=mime))
        return [f"[image {len(images)} ({part.uri}): {mime}, {_size(part.blob)}; shown after this]"]
    return [f"[resource {part.uri}: {mime}, {_size(part.blob)} of binary data]"]


def _link(link: mcp_types.ResourceLink) -> str:
    about = f" ({link.mime_type})" if link.mime_type else ""
    said = f": {link.description}" if link.description else ""
    return f"[resource link: {link.title or link.name} <{link.uri}>{about}{said}]"


def _says(text: str, structured: dict[str, object]) -> bool:
    """Whether ``text`` is the structured content as JSON, or the value the SDKs wrap
    as ``{"result": value}`` when a tool returns something that is not an object."""
    if structured == {"result": text}:
        return True
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return bool(value == structured or structured == {"result": value})


def _decoded(data: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return b""


def _size(data: str) -> str:
    size = len(data) * 3 // 4
    return f"{size / 1024:.1f} kB" if size >= 1024 else f"{size} bytes"


def _duration(data: str) -> str:
    """``, 2.5 s`` for WAV audio; nothing for formats it cannot read."""
    try:
        with wave.open(io.BytesIO(_decoded(data))) as wav:
            seconds = wav.getnframes() / wav.getframerate()
    except (wave.Error, EOFError, ZeroDivisionError):
        return ""
    return f", {seconds:.1f} s"
