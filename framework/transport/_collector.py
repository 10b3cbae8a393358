"""The garbage collector, settled once a process holds live sessions.

A client holding many voice sessions makes objects by the hundred thousand a
minute, nearly all short-lived; what its collections keep walking is what
start-up made (modules, classes, the protocol's tables) and each session's
long-lived state. The engine freezes its start-up objects the same way when it
serves alone (``framework.engine``'s ``settle_collector``; the two could be
one helper in a module both may import).
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 7000
"""Allocations between young collections once settled (CPython's default is 700)."""
_settled = False


def settle_collector() -> bool:
    """Freezes what exists now out of future collections, once per process.

    Also spaces young collections out (:data:`YOUNG_THRESHOLD`), unless the
    application set its own thresholds. Returns whether this call did it.
    """
    global _settled
    if _settled:
        return False
    _settled = True
    gc.collect()
    gc.freeze()
    young, middle, old = gc.get_threshold()
    if young == 700:  # CPython's default: nobody chose it
        gc.set_threshold(YOUNG_THRESHOLD, middle, old)
    return True
