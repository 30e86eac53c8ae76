"""Fixtures for the Postfix suite: one private Postfix instance for the module (started in
about two seconds), and per test the gateway on the shipped configuration and policies, the
quarantine, and the sink that stands for every mailbox."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import yaml

from gateway.config import Settings, load_settings
from gateway.quarantine import open_store
from gateway.quarantine.base import QuarantineStore
from gateway.runtime import load_runtime
from gateway.service.listener import Gateway
from tests.factories import REPO
from tests.integration.postfix.instance import (
    Ports,
    PostfixInstance,
    available,
    free_ports,
)
from tests.upstream import Upstream

REASON = available()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")

# Mail the test policy refuses to outsiders: the shipped policies have no reject rule, so
# the test adds one, as a district might.
REFUSE_PHRASE = "project nightingale"


@pytest.fixture(scope="module")
def postfix() -> Iterator[PostfixInstance]:
    if REASON is not None:
        pytest.skip(REASON)
    # Not under pytest's temporary folder: Postfix's own processes run as `postfix` and must
    # be able to walk down to their queue, and pytest's folders are private to root.
    root = Path(tempfile.mkdtemp(prefix="gateway-postfix-"))
    root.chmod(0o755)
    instance = PostfixInstance(root, Ports(*free_ports(5)))
    try:
        instance.start()
        yield instance
    finally:
        try:
            instance.stop()
        finally:
            if os.environ.get("KEEP_POSTFIX_LOG"):  # to read a failure's mail.log whole
                shutil.copy(instance.log, os.environ["KEEP_POSTFIX_LOG"])
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(autouse=True)
def empty_queue(postfix: PostfixInstance) -> Iterator[None]:
    """Each test starts and ends with nothing queued, so no test receives another's mail, and
    reads only its own mail.log lines."""
    postfix.mark_log()
    yield
    subprocess.run(["postsuper", "-c", str(postfix.config_dir), "-d", "ALL"],
                   capture_output=True, timeout=30, check=False)


class Sink(Upstream):
    """The mailboxes and the rest of the world: Postfix delivers everything here."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self._port = port  # main.cf names it; start() binds this port
        self.accept_long_lines()


@pytest.fixture
async def sink(postfix: PostfixInstance) -> AsyncIterator[Sink]:
    box = Sink(postfix.ports.sink)
    await box.start()
    yield box
    await box.stop()


@pytest.fixture
def settings(tmp_path: Path, postfix: PostfixInstance) -> Settings:
    """The shipped quick-start configuration and policies, on the instance's ports: the
    gateway listens where Postfix's filters point and relays to Postfix's reinjection port.
    One rule is added: refuse mail to outsiders that names a confidential project."""
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    text = (config / "gateway.yaml").read_text()
    text = text.replace("port: 10025", f"port: {postfix.ports.gateway}")
    text = text.replace("port: 10026", f"port: {postfix.ports.reinject}")
    text = text.replace('metrics: {listen: "127.0.0.1:9125"}', "")
    (config / "gateway.yaml").write_text(text)
    policies = yaml.safe_load((config / "policies.yaml").read_text())
    policies["lexicons"]["confidential_projects"] = [REFUSE_PHRASE]
    policies["rules"].append({
        "id": "CONFIDENTIAL", "item": "test", "reason": "a confidential project named outside",
        "when": {"recipient": {"account": "outside"},
                 "findings": {"detector": "lexicon:confidential_projects"}},
        "action": "reject"})
    (config / "policies.yaml").write_text(yaml.safe_dump(policies, sort_keys=False))
    (tmp_path / "var").mkdir(mode=0o700)
    return load_settings(config / "gateway.yaml")


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[QuarantineStore]:
    opened = open_store(settings)
    yield opened
    opened.close()


class GatewayControl:
    """Start the gateway on its fixed port (Postfix's filters point there); stop it."""

    def __init__(self, settings: Settings, store: QuarantineStore):
        self.settings = settings
        self.store = store
        self.running: Gateway | None = None

    async def start(self) -> Gateway:
        gateway = Gateway(self.settings, load_runtime(self.settings), self.store)
        await gateway.start()
        self.running = gateway
        return gateway

    async def stop(self) -> None:
        if self.running is not None:
            await self.running.drain(0)
            self.running = None


@pytest.fixture
async def gateway_control(settings: Settings, store: QuarantineStore,
                          sink: Sink) -> AsyncIterator[GatewayControl]:
    control = GatewayControl(settings, store)
    yield control
    await control.stop()


@pytest.fixture
async def gateway(gateway_control: GatewayControl) -> Gateway:
    return await gateway_control.start()
