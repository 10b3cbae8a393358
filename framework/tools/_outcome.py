"""What a call returns: the :class:`ToolOutcome`, and the error of arguments that do not fit."""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

import attrs

from framework.errors import CantataError
from framework.tools._call import ToolImage

__all__ = ["ToolArgumentsError", "ToolOutcome", "ToolStatus"]

ToolStatus: TypeAlias = Literal["ok", "bad_arguments", "error", "timeout", "cancelled"]
"""How a call ended. :meth:`FunctionTool.run` never returns ``"cancelled"``:
cancellation propagates as ``trio.Cancelled`` and the caller records it."""


@attrs.frozen(kw_only=True)
class ToolOutcome:
    """The result of one function call, as the model will see it.

    Attributes:
        status: How the call ended.
        output: The model-visible text (the ``function_call_output``).
        value: The function's raw return value (``None`` unless the call returned).
        error: What went wrong, for logs; ``None`` when the status is ``"ok"``.
        exception: The exception the tool raised, if it raised one.
        images: Images the tool returned (in a :class:`ToolResult`), for the
            model to see after the output.
    """

    status: ToolStatus
    output: str
    value: Any = None
    error: str | None = None
    exception: BaseException | None = attrs.field(default=None, eq=False)
    images: tuple[ToolImage, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether the tool ran and returned."""
        return self.status == "ok"


class ToolArgumentsError(CantataError, ValueError):
    """The model's arguments do not fit the tool's parameters.

    Attributes:
        tool_name: The tool the arguments were for.
        problems: One message per problem, each ending in ``@ <path>``.
    """

    def __init__(self, tool_name: str, problems: list[str]) -> None:
        self.tool_name = tool_name
        self.problems = tuple(problems)
        super().__init__(f"Invalid arguments for {tool_name}: {'; '.join(problems)}")
