"""Log privacy: student addresses in log text become pseudonyms, however a server quotes
them; everything else passes unchanged."""

from __future__ import annotations

from gateway.addresses import normalize_address
from gateway.logprivacy import Redactor, student_pseudonym
from gateway.model import Party, Role


def test_redactor_replaces_student_addresses_only() -> None:
    """Student addresses (District or personal, any spelling) become the same pseudonym;
    staff and outside addresses, and text without an address, pass unchanged."""
    rows = {"alex.jones@students.example", "o'brien@gmail.example"}

    class Known:  # a directory double: two student rows; students.example is the student domain
        def party(self, address: str) -> Party:
            norm = normalize_address(address)
            row = norm in rows or norm.split("+")[0] + "@students.example" in rows
            student = row or norm.endswith("@students.example")
            return Party(norm, Role.STUDENT if student else Role.STAFF, True,
                         "S1" if row else None)

    redact = Redactor(Known())
    alex = student_pseudonym("alex.jones@students.example")
    assert redact.address("Alex.Jones@Students.example") == alex
    assert redact.address("jsmith@staff.example") == "jsmith@staff.example"
    assert redact.address("") == ""
    reply = ("550 5.1.1 <alex.jones@students.example>: rejected; "
             "s482913@students.example, jsmith@staff.example")
    assert redact.text(reply) == (f"550 5.1.1 <{alex}>: rejected; "
                                  f"{student_pseudonym('s482913@students.example')}, "
                                  "jsmith@staff.example")
    assert redact.text("250 2.0.0 Ok: queued as X") == "250 2.0.0 Ok: queued as X"
    # However a server quotes it, and with a +tag, it is the same pseudonym.
    for quoted in ("'alex.jones@students.example' unknown", "user=alex.jones@students.example",
                   '<"alex.jones"@students.example>', "<alex.jones+band@students.example>.",
                   "<ALEX.JONES@STUDENTS.EXAMPLE>"):
        assert alex in redact.text(quoted) and "jones" not in redact.text(quoted), quoted
    assert "älex" not in redact.text("550 <älex@students.example>")  # any script
    # An apostrophe can be the server's quoting or part of the address: both are found.
    obrien = student_pseudonym("o'brien@gmail.example")
    assert redact.text("550 <o'brien@gmail.example>") == f"550 <{obrien}>"
    assert redact.text("550 user=o'brien@gmail.example") == f"550 user={obrien}"
    assert redact.text("550 'o'brien@gmail.example'") == f"550 '{obrien}'"
    # Hostile or broken upstream replies, up to aiosmtplib's 32 KB: every part of the address
    # pattern is bounded, so each is scanned in one pass (unbounded, the first took 16 s).
    for no_address in ("a" * 32_000 + "@", "a." * 16_000 + "@x"):
        assert redact.text(no_address) == no_address
    for student in ("'" * 32_000 + "@students.example", ("y'" * 40 + "@students.example ") * 350):
        assert "@students.example" not in redact.text(student)
    long_local = "x" * 70 + "@students.example"
    assert redact.text(long_local) == "x" * 6 + student_pseudonym("x" * 64 + "@students.example")
    # A District student account not in the directory: the whole quoted match goes.
    new = redact.text("550 'new.kid@students.example' x=y.z@students.example")
    assert new == (f"550 {student_pseudonym('new.kid@students.example')}' "
                   f"{student_pseudonym('y.z@students.example')}")
