"""Detectors, one module per detector, each with a `name` and a docstring saying what counts.

`PART_DETECTORS` run on every text part (they read one shared `Analysis`, built from a single
engine pass); `lexicon` yields one finding per term list; `media` and `uninspectable` look at
the attachment inventory and the extraction problems instead of text.
"""

from __future__ import annotations

from types import ModuleType

from gateway.detectors import (
    dob,
    lexicon,
    media,
    record_category,
    roster,
    ssn,
    student_name,
    student_number,
    student_number_format,
    uninspectable,
)

PART_DETECTORS: tuple[ModuleType, ...] = (
    student_number, student_number_format, student_name, dob, ssn, record_category, roster,
)
ALL: tuple[ModuleType, ...] = (*PART_DETECTORS, lexicon, media, uninspectable)
