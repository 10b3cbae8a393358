"""Lazy imports of the speech packages, with one clear error when one is missing.

Nothing here imports them at module load, so ``cantata plugins`` lists the
speech plugin on an install without the ``speech`` extra.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from framework.engine import TranscriptionUnavailable

INSTALL = "pip install 'cantata[speech]'"


class SpeechPackageMissing(TranscriptionUnavailable, ImportError):
    """A package of the ``speech`` extra is not installed.

    It is a :class:`TranscriptionUnavailable`, so a session reports it as a
    failed transcription with this message, and an :class:`ImportError`.
    """


def require(module: str, package: str) -> ModuleType:
    """Imports ``module`` (from the PyPI package ``package``) or says how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise SpeechPackageMissing(
            f"The {package} package is not installed ({e}); it comes with the speech "
            f"extra: {INSTALL}"
        ) from e
