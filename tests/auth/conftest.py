"""The DNS world of the authentication tests (a real Knot server): `tests.authzones`."""

from tests.authzones import auth_world

__all__ = ["auth_world"]
