"""What the PDF helper can answer besides page texts: the extractor files each as a problem
(held) or falls back to pypdf. Kept apart from the process code so the PDF extractor can tell
them apart without importing it."""

from __future__ import annotations

import importlib.util


class HelperFailed(Exception):
    """The helper crashed, or could not be started or talked to."""


class HelperTimeout(HelperFailed):
    """The job did not finish before its deadline (the helper was killed)."""


class HelperUnavailable(HelperFailed):
    """The helper died before it ever answered: it is not started again for a while."""


class NeedsPassword(Exception):
    """The PDF opens only with a user password."""


class Unreadable(Exception):
    """PDFium could not read the file."""


class TooMuchText(Exception):
    """A job from the loop (`PdfHelper.submit`) produced more text than it may hand back
    there: the PDF is to be read in a thread."""


class HelperBusy(HelperFailed):
    """Another PDF has had the helper for longer than BUSY_WAIT: read this one with pypdf."""


def available() -> bool:
    """Is PDFium installed (where it has wheels, or by the `fast` extra)? Without it PDFs are
    read by pypdf in-process."""
    return importlib.util.find_spec("pypdfium2") is not None
