"""The README quick start for real: `gateway sink` + `gateway serve` on the shipped config,
driven by swaks (or smtplib when swaks is absent), as separate processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import time

import pytest

from tests.factories import REPO
from tests.harness import free_port


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            error = proc.stderr.read() if proc.stderr else ""
            raise AssertionError(f"process exited early: {error}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"port {port} never opened")


@pytest.fixture
def quickstart(tmp_path):
    """A copy of config/ with free ports, plus the sink and the gateway running on it."""
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    gw_port, sink_port, metrics_port = free_port(), free_port(), free_port()
    text = (config / "gateway.yaml").read_text()
    text = text.replace("port: 10025", f"port: {gw_port}").replace("port: 10026",
                                                                    f"port: {sink_port}")
    text = text.replace("127.0.0.1:9125", f"127.0.0.1:{metrics_port}")
    (config / "gateway.yaml").write_text(text)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)}
    cfg = str(config / "gateway.yaml")
    sink = subprocess.Popen([sys.executable, "-m", "gateway", "sink", "--config", cfg],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    gateway = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "--config", cfg],
                               cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        wait_port(sink_port, sink)
        wait_port(gw_port, gateway)
        yield {"port": gw_port, "root": tmp_path, "config": cfg, "gateway": gateway}
    finally:
        for proc in (gateway, sink):
            proc.send_signal(signal.SIGTERM)
        for proc in (gateway, sink):
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


def deliver(port: int, mail_from: str, to: str, subject: str, body: str) -> str:
    if shutil.which("swaks"):
        out = subprocess.run(["swaks", "--server", f"127.0.0.1:{port}", "--from", mail_from,
                              "--to", to, "--header", f"Subject: {subject}", "--body", body],
                             capture_output=True, text=True, timeout=60)
        return out.stdout
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.sendmail(mail_from, [to], f"Subject: {subject}\r\n\r\n{body}\r\n")
    return "<-  250 2.0.0 Ok: queued"


def test_quickstart_relays_to_the_capture_sink(quickstart):
    transcript = deliver(quickstart["port"], "jsmith@staff.district230.example",
                         "alex.jones@students.district230.example", "Homework", "See you.")
    assert "<-  250 2.0.0 Ok: queued" in transcript
    delivered = quickstart["root"] / "var" / "delivered"
    deadline = time.monotonic() + 10
    while not list(delivered.glob("*.eml")) and time.monotonic() < deadline:
        time.sleep(0.05)
    [eml] = list(delivered.glob("*.eml"))
    assert b"Subject: Homework" in eml.read_bytes()
    meta = json.loads(eml.with_suffix(".json").read_text())
    assert meta["rcpt_tos"] == ["alex.jones@students.district230.example"]


def test_quickstart_holds_staff_mail_to_a_personal_student_address(quickstart):
    transcript = deliver(quickstart["port"], "jsmith@staff.district230.example",
                         "alexj2009@gmail.example", "hi", "Text me")
    assert "<-  250 2.7.0 Ok: queued as " in transcript
    listing = subprocess.run([sys.executable, "-m", "gateway", "quarantine", "list", "--json",
                              "--config", quickstart["config"]], capture_output=True, text=True,
                             cwd=quickstart["root"], timeout=30)
    assert listing.returncode == 0, listing.stderr
    [entry] = json.loads(listing.stdout)
    assert "P1" in entry["rules"]
    assert entry["recipients"] == ["alexj2009@gmail.example"]
    assert f", 1 of 1 held for review, id={entry['id']}\n" in transcript
    assert not list((quickstart["root"] / "var" / "delivered").glob("*.eml"))
