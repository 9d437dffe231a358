"""The one exception of the simulation, kept free of heavy imports so the command line
can report a failure before fastmcp is even loaded."""

from __future__ import annotations


class JourneyFailed(Exception):
    """An expected failure: the server refused a step, or could not be reached. Its
    message is the whole story (who, which step, the AdCP code, field and suggestion);
    the command line prints it instead of a traceback."""


class Refused(JourneyFailed):
    """A step the server refused with a code the journey knows how to handle (e.g.
    PRODUCT_UNAVAILABLE: check avails again and buy what is left). Unhandled, it is a
    failure like any other."""

    def __init__(self, message: str, error: dict) -> None:
        super().__init__(message)
        self.error = error
