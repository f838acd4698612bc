"""The exceptions sipstats raises; every one derives from :class:`SipstatsError`.

    SipstatsError
    ├── CaptureError      a capture file cannot be read at all (not a capture, empty, unreadable)
    ├── SipParseError     a payload is not a well-formed SIP message (carries a counted reason)
    ├── CatalogueError    a status code that is not a SIP status code (7xx, 99, text)
    ├── OptionError       an option no report can use (interval, ports, peer, time bound)
    └── ReportError       a report cannot be made (nothing readable, output not a directory)

Damage *inside* a readable capture is not an exception: it is counted in the input summary.
Every command turns these into its exit status (:data:`EXIT_USAGE`).
"""

from __future__ import annotations

from typing import Final

#: Exit status of a report run: every input read / a report written despite damaged or
#: skipped input / a usage error or nothing readable (the CLI's only other outcome).
EXIT_OK: Final = 0
EXIT_DAMAGED: Final = 1
EXIT_USAGE: Final = 2
#: Exit status of a command whose output's reader went away before it was written (``sipstats
#: F | head -1``): 128 + SIGPIPE, what a shell shows for a command a closed pipe ended (``cat
#: big | head -1``); not 0, the output was not all delivered, and not 1 or 2, which speak of
#: the input.
EXIT_CLOSED_OUTPUT: Final = 141


class SipstatsError(Exception):
    """Base class: callers catch this one to turn any sipstats failure into a clean message."""


class CaptureError(SipstatsError):
    """A whole capture file is unusable; the message names the file."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


class SipParseError(SipstatsError):
    """A payload that is not a well-formed SIP message.

    ``reason`` is one of the fixed, countable reasons in :data:`sipstats.schema.MALFORMED_REASONS`;
    ``detail`` says what exactly was wrong, for the first few examples in a report.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class CatalogueError(SipstatsError, ValueError):
    """A value that cannot be a SIP status code (RFC 3261 §7.2: three digits, 100-699)."""


class OptionError(SipstatsError, ValueError):
    """An option value the library refuses before any work starts (the CLI's usage errors)."""


class ReportError(SipstatsError):
    """A report cannot be made at all: no input is readable, or its output cannot be placed."""
