"""Fixtures shared by the whole suite: the inspector (also once per pattern engine), a real
upstream that can be told to misbehave, gateways started in this process and drained at
teardown, and a real PostgreSQL server (tests.pgserver). Also the Hypothesis profiles: short
by default, so `make test` stays quick; `HYPOTHESIS_PROFILE=long` runs thousands of examples.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from gateway.config import Settings
from gateway.inspect import Inspector
from gateway.service.listener import Gateway
from tests.factories import AVAILABLE_ENGINES, make_inspector
from tests.harness import start_gateway
from tests.pgserver import postgres_server, postgres_url  # noqa: F401 - fixtures for all
from tests.upstream import Upstream

_QUIET = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
settings.register_profile("default", max_examples=50, deadline=None,
                          suppress_health_check=_QUIET)
settings.register_profile("long", max_examples=2500, deadline=None,
                          suppress_health_check=_QUIET)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(scope="module")
def inspector() -> Inspector:
    """The real inspector with the test roster (tests.factories.STUDENTS), default engine."""
    return make_inspector()


@pytest.fixture(scope="module", params=AVAILABLE_ENGINES)
def engine_inspector(request: pytest.FixtureRequest) -> Inspector:
    """The same, once on each pattern engine installed here: they must agree."""
    return make_inspector(engine=request.param)


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    up = await Upstream().start()
    yield up
    up.gate.set()  # a test that held DATA open must not keep its client waiting
    await up.stop()


@pytest.fixture
async def gateways() -> AsyncIterator[Callable[..., Awaitable[Gateway]]]:
    """Start gateways (tests.harness.start_gateway) and drain them all at teardown."""
    started: list[Gateway] = []

    async def start(settings: Settings, policy: Any = None, store: Any = None,
                    inspector: Any = None) -> Gateway:
        gw = await start_gateway(settings, policy, store, inspector)
        started.append(gw)
        return gw

    yield start
    for gw in started:
        await gw.drain(0)
