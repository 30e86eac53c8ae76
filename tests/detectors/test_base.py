"""Masks: samples kept for reviewers are masked, and the public view of a finding carries no
student data."""

from __future__ import annotations

from gateway.detectors.base import mask_date, mask_name, mask_number, mask_ssn
from tests.factories import message


def test_masks():
    assert (mask_ssn("524-61-3378"), mask_number("482913"), mask_name("Jane Doe"),
            mask_date("03/04/2009")) == ("***-**-3378", "****13", "J*** D**", "**/**/****")


def test_samples_are_masked_and_public_view_has_no_student_data(engine_inspector):
    result = engine_inspector.inspect(message("Alex Jones SSN 524-61-3378 student ID 482913"))
    for f in result.findings:
        assert "3378" not in str(f.public()) and "482913" not in str(f.public())
        assert f.sample is None or ("482913" not in f.sample and "524-61" not in f.sample)
