"""`gateway serve`: load and check everything once, then serve in this process or in workers.

A configuration, directory or policy that does not load cleanly stops the start with every
problem listed (exit 2); so does a quarantine store that cannot be opened. A listening address
that cannot be bound exits 1.
"""

from __future__ import annotations

import sys

from gateway.config import load_settings
from gateway.runtime import load_runtime
from gateway.service.daemon import Daemon, log_skipped_rows, open_quarantine, run_loop
from gateway.service.engines import log_engines
from gateway.service.logsetup import configure_logging
from gateway.service.workers import serve_workers
from gateway.yamlsrc import SourceErrors


def serve(config_path: str | None) -> int:
    try:
        settings = load_settings(config_path)
        configure_logging(settings.log)  # first, so that loading logs in the configured format
        runtime = load_runtime(settings)
    except SourceErrors as exc:
        print(exc, file=sys.stderr)
        return 2
    log_skipped_rows(runtime)
    log_engines()
    if settings.smtp.workers != 1:
        return serve_workers(config_path, settings, runtime)  # N processes sharing the address
    try:
        store = open_quarantine(settings)
    except Exception as exc:
        print(f"gateway: {exc}", file=sys.stderr)  # QuarantineError omits URL passwords
        return 2
    daemon = Daemon(config_path, settings, runtime, store)
    try:
        return run_loop(daemon.run())
    except OSError as exc:
        print(f"gateway: cannot listen on {settings.listen.host}:{settings.listen.port}: "
              f"{exc.strerror or exc}", file=sys.stderr)
        return 1
