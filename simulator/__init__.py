"""callsim: a reference call stack, virtual participants and a conformance harness
for the CometChat Calls SDK v4 call-session contract."""

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["__version__"]
