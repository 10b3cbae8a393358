"""Function tools: from a Python function to a model-callable tool and back.

One module per concept: ``_function`` (the :class:`FunctionTool`, :func:`tool`,
:func:`tools_of` and a call's parse-once steps), ``_schema`` (JSON schemas from
type hints), ``_records`` (the fields of attrs classes, dataclasses, TypedDicts
and pydantic models), ``_convert`` (the model's JSON structured into parameter
types, with its tolerance rules),
``_docstrings`` (descriptions from Google-style docstrings), ``_render`` (return
values as the model's text), ``_names`` (the protocol's name rule and the policy
that fits other text into it), ``_outcome`` (what a call returns) and ``_call``
(the running call as its tool sees it: progress; outputs with images).

This package depends on ``framework.protocol`` and the standard stack only: the
runtime, the agent and the plugins build on it, never the other way round.
"""

from framework.tools._call import ProgressReport as ProgressReport
from framework.tools._call import ToolCall as ToolCall
from framework.tools._call import ToolImage as ToolImage
from framework.tools._call import ToolResult as ToolResult
from framework.tools._call import current_call as current_call
from framework.tools._function import ApprovalPolicy as ApprovalPolicy
from framework.tools._function import FunctionTool as FunctionTool
from framework.tools._function import OnInterrupt as OnInterrupt
from framework.tools._function import tool as tool
from framework.tools._function import tools_of as tools_of
from framework.tools._names import MAX_NAME_LENGTH as MAX_NAME_LENGTH
from framework.tools._names import check_name as check_name
from framework.tools._names import fit_name as fit_name
from framework.tools._names import qualified_name as qualified_name
from framework.tools._names import resolve_names as resolve_names
from framework.tools._outcome import ToolArgumentsError as ToolArgumentsError
from framework.tools._outcome import ToolOutcome as ToolOutcome
from framework.tools._outcome import ToolStatus as ToolStatus

__all__ = [
    "MAX_NAME_LENGTH",
    "ApprovalPolicy",
    "FunctionTool",
    "OnInterrupt",
    "ProgressReport",
    "ToolArgumentsError",
    "ToolCall",
    "ToolImage",
    "ToolOutcome",
    "ToolResult",
    "ToolStatus",
    "check_name",
    "current_call",
    "fit_name",
    "qualified_name",
    "resolve_names",
    "tool",
    "tools_of",
]
