"""The one exception of the simulation, kept free of heavy imports so the command line
can report a failure before fastmcp is even loaded."""

from __future__ import annotations


class JourneyFailed(Exception):
    """An expected failure: the server refused a step, or could not be reached. Its
    message is the whole story (who, which step, the AdCP code, field and suggestion);
    the command line prints it instead of a traceback."""
