"""OpenTelemetry traces and metrics of sessions, after the GenAI semantic conventions.

``OpenTelemetry()`` among an agent's plugins (or ``plugins=["otel"]``, installed);
``pip install 'cantata[otel]'`` brings the API, and the application sets up
the SDK and its exporters as it likes. Transcripts and tool arguments stay
out of the telemetry unless ``capture_content=True``.
"""

from ._plugin import OpenTelemetry as OpenTelemetry
from ._plugin import SessionTelemetry as SessionTelemetry
