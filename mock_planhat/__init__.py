"""mock-planhat: a stateful fake of the Planhat API and a harness for Segment's destination."""

from .app import create_app
from .config import Config

__all__ = ["Config", "create_app"]
__version__ = "0.1.0"
