"""The Segment → Planhat destination as plain Python.

``translate(call, settings)`` turns one Segment call into :class:`PlanhatRequest` objects (or a
:class:`Skip`); :class:`Destination` sends them through a transport (:class:`HttpTransport`
for real HTTP, :class:`WsgiTransport` for an in-process WSGI app). ``Settings.delivery`` says
how: ``dock`` (the default without an API token: each call to Planhat's ``/dock/segment``, as
Segment's cloud delivers) or ``rest`` (the default with one: Planhat's REST API, in bulk).
"""

from .destination import Destination, SendResult
from .mapping import PlanhatRequest, Skip, translate
from .segment import InvalidCall, validate_call
from .settings import Settings, SettingsError
from .transport import HttpTransport, Response, TransportError, WsgiTransport

__all__ = [
    "Destination",
    "HttpTransport",
    "InvalidCall",
    "PlanhatRequest",
    "Response",
    "SendResult",
    "Settings",
    "SettingsError",
    "Skip",
    "TransportError",
    "WsgiTransport",
    "translate",
    "validate_call",
]
