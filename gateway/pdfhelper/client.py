"""The daemon's side of the PDF helper process (`gateway.pdfhelper.worker`).

One helper per process, started on the first PDF and shared by every inspection thread (one
job at a time; the others wait their turn within their own deadline). A job that misses its
deadline gets the helper killed (a hung parser cannot be interrupted any other way); a helper
that dies mid-job is restarted on the next one. Either way the caller gets an exception it turns
into an uninspectable part, so the message is held: fail closed.

A worker process forked by `smtp.workers` never uses its parent's helper: the helper belongs to
the pid that started it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import selectors
import subprocess
import sys
import threading
import time
from typing import NoReturn

import structlog

from gateway.config import InspectionSettings
from gateway.pdfhelper.errors import (
    HelperBusy,
    HelperFailed,
    HelperTimeout,
    HelperUnavailable,
    NeedsPassword,
    TooMuchText,
    Unreadable,
    available,
)
from gateway.pdfhelper.worker import NEEDS_PASSWORD, READY, REQUEST, RESPONSE, TEXT

log = structlog.get_logger("gateway.pdf")


_MAX_U32 = 0xFFFFFFFF
_JSON_BYTES_PER_CHAR = 12  # the most json.dumps writes for one character (a surrogate pair)


class PdfHelper:
    RETRY_START_AFTER = 60.0  # seconds without a helper after one that failed to start
    START_TIMEOUT = 10.0  # for the helper's "ready" byte (Python and PDFium loaded)
    BUSY_WAIT = 1.0  # longest wait for a helper busy with another PDF

    def __init__(self, argv: list[str] | None = None) -> None:
        # -P: the service's working directory must not shadow a module of the helper's.
        self._argv = argv or [sys.executable, "-P", "-m", "gateway.pdfhelper.worker"]
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._pipes: _Pipes | None = None
        self._owner = os.getpid()
        self._unavailable_until = 0.0

    def page_texts(self, data: bytes, timeout: float, max_chars: int) -> list[str]:
        """The text of each page, or an exception; never waits past `timeout` seconds.

        HelperBusy when another PDF holds the helper longer than BUSY_WAIT (one slow or
        hostile PDF must not make every other PDF miss its deadline).
        """
        deadline = time.monotonic() + timeout
        if len(data) > _MAX_U32:
            raise HelperFailed("too large for the helper protocol")
        if not self._lock.acquire(timeout=max(min(timeout, self.BUSY_WAIT), 0.0)):
            raise HelperBusy("the PDF helper is busy with another PDF")
        try:
            return self._job(data, deadline, min(max(max_chars, 0), _MAX_U32))
        finally:
            self._lock.release()

    def submit(self, data: bytes, timeout: float,
               max_chars: int) -> asyncio.Future[list[str]] | None:
        """Start a job from the event loop without blocking it: a future of what `page_texts`
        would return or raise. None when the helper cannot take the job at once (busy with
        another PDF, not running yet, or this is a forked process): the caller reads the PDF
        in a thread instead. Cancelling the future kills the helper (its reply is in flight).
        """
        if self._owner != os.getpid() or len(data) > _MAX_U32:
            return None
        if not self._lock.acquire(blocking=False):
            return None
        job: _Job | None = None
        try:
            pipes, proc = self._pipes, self._proc
            if pipes is None or proc is None or proc.poll() is not None:
                self._lock.release()
                return None
            max_chars = min(max(max_chars, 0), _MAX_U32)
            job = _Job(self, pipes, proc, _JSON_BYTES_PER_CHAR * max_chars + 4096)
            job.start(REQUEST.pack(len(data), max_chars) + data, timeout)
        except BaseException:  # the job could not be set up: the lock must not stay taken
            if job is None:
                self._lock.release()
            else:
                job.abandon()
            raise
        return job.future

    def start(self) -> None:
        """Start the helper now rather than on the first PDF (about 0.2 s of Python start-up)."""
        with self._lock:
            self._running()

    def close(self) -> None:
        with self._lock:
            if self._owner == os.getpid():  # never the helper of a process we were forked from
                self._stop()

    @property
    def pid(self) -> int | None:
        proc = self._proc if self._owner == os.getpid() else None
        return proc.pid if proc is not None and proc.poll() is None else None

    # -- one job ---------------------------------------------------------------------------
    def _job(self, data: bytes, deadline: float, max_chars: int) -> list[str]:
        pipes = self._running()
        proc = pipes.proc
        if time.monotonic() >= deadline:
            raise HelperTimeout("no time left for the PDF helper")  # it stays: nothing was sent
        try:
            pipes.write_all(REQUEST.pack(len(data), max_chars) + data, deadline)
            status, length = RESPONSE.unpack(pipes.read_exact(RESPONSE.size, deadline))
            payload = pipes.read_exact(length, deadline)
        except _NothingSent:
            raise  # the helper never saw this job: it stays in service
        except HelperTimeout:
            log.warning("pdf_helper_killed", reason="deadline", pid=proc.pid)
            self._stop()
            raise
        except (OSError, HelperFailed) as exc:
            log.warning("pdf_helper_failed", error=type(exc).__name__, pid=proc.pid,
                        exit_code=proc.poll())
            self._stop()
            raise HelperFailed("the PDF helper died") from None
        except BaseException:  # anything else mid-exchange: the pipe may hold half a reply
            self._stop()
            raise
        return _pages(status, payload)

    def _running(self) -> _Pipes:
        if self._owner != os.getpid():  # forked: the helper is the parent's, leave it alone
            self._proc, self._pipes, self._owner = None, None, os.getpid()
        if self._pipes is not None and self._proc is not None and self._proc.poll() is None:
            return self._pipes
        self._stop()
        if time.monotonic() < self._unavailable_until:
            raise HelperUnavailable("the PDF helper failed to start recently")
        try:
            proc = subprocess.Popen(self._argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL)
        except OSError as exc:
            self._failed_to_start(type(exc).__name__, None)
        assert proc.stdin is not None and proc.stdout is not None
        os.set_blocking(proc.stdin.fileno(), False)
        os.set_blocking(proc.stdout.fileno(), False)
        self._proc, self._pipes = proc, _Pipes(proc)
        try:  # the ready byte: only a helper that never gets this far is "broken"
            ready = self._pipes.read_exact(1, time.monotonic() + self.START_TIMEOUT) == READY
        except (OSError, HelperFailed):
            ready = False
        if not ready:
            self._stop()
            self._failed_to_start("no ready byte", proc.returncode)
        log.info("pdf_helper_started", pid=proc.pid)
        return self._pipes

    def _failed_to_start(self, error: str, exit_code: int | None) -> NoReturn:
        self._unavailable_until = time.monotonic() + self.RETRY_START_AFTER
        log.warning("pdf_helper_failed", error=error, exit_code=exit_code, stage="start")
        raise HelperUnavailable("the PDF helper cannot start")

    def _stop(self, *, wait: bool = True) -> None:
        """Kill the helper. `wait=False` (on the event loop): reaped by a thread, since even a
        killed process can take tens of milliseconds to go (its memory is freed first)."""
        proc, pipes, self._proc, self._pipes = self._proc, self._pipes, None, None
        if pipes is not None:
            pipes.close()
        if proc is None:
            return
        with contextlib.suppress(OSError):
            proc.kill()
        if wait:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
        else:
            threading.Thread(target=proc.wait, name="pdf-helper-reaper", daemon=True).start()
        for stream in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()


def _pages(status: int, payload: bytes) -> list[str]:
    if status == TEXT:
        return [str(page) for page in json.loads(payload)]
    if status == NEEDS_PASSWORD:
        raise NeedsPassword
    raise Unreadable


class _Job:
    """One job driven by the event loop (`PdfHelper.submit`): the request written as the pipe
    takes it, the reply read as it arrives, the helper killed at the deadline. The helper's
    lock is held from `submit` until the job ends, exactly once released."""

    def __init__(self, helper: PdfHelper, pipes: _Pipes, proc: subprocess.Popen[bytes],
                 max_reply: int):
        self.max_reply = max_reply  # bytes: more is not parsed on the loop
        self.loop = asyncio.get_running_loop()
        self.future: asyncio.Future[list[str]] = self.loop.create_future()
        self.helper, self.pipes, self.proc = helper, pipes, proc
        self.request = memoryview(b"")
        self.reply = bytearray()
        self.timer: asyncio.TimerHandle | None = None
        self.ended = False

    def start(self, request: bytes, timeout: float) -> None:
        if timeout <= 0:  # nothing sent: the helper stays in service
            self._end(HelperTimeout("no time left for the PDF helper"), stop=False)
            return
        self.request = memoryview(request)
        self.timer = self.loop.call_later(timeout, self._expired)
        self.future.add_done_callback(self._settled)
        self.loop.add_reader(self.pipes.out_fd, self._read)
        self._write()

    def _write(self) -> None:
        try:
            while self.request:
                self.request = self.request[os.write(self.pipes.in_fd, self.request):]
        except BlockingIOError:  # the pipe is full: go on when the helper has read some
            self.loop.add_writer(self.pipes.in_fd, self._write)
            return
        except OSError as exc:
            self._failed(type(exc).__name__)
            return
        self.loop.remove_writer(self.pipes.in_fd)

    def _read(self) -> None:
        try:
            chunk = os.read(self.pipes.out_fd, 1 << 20)
        except BlockingIOError:
            return
        except OSError as exc:
            self._failed(type(exc).__name__)
            return
        if not chunk:
            self._failed("closed its output")
            return
        self.reply += chunk
        if len(self.reply) < RESPONSE.size:
            return
        status, length = RESPONSE.unpack_from(self.reply)
        if length > self.max_reply:  # the pages' text, or the last page alone, is too long
            self._end(TooMuchText(), stop=True)  # not read: the helper is still writing it
            return
        if len(self.reply) < RESPONSE.size + length:
            return
        if len(self.reply) > RESPONSE.size + length:
            self._failed("more than one reply")
            return
        try:
            pages = _pages(status, bytes(self.reply[RESPONSE.size:]))
        except (NeedsPassword, Unreadable) as exc:
            self._end(exc, stop=False)
            return
        except ValueError:  # not JSON: the helper is not itself
            self._failed("unreadable reply")
            return
        self._end(pages, stop=False)

    def _expired(self) -> None:
        log.warning("pdf_helper_killed", reason="deadline", pid=self.proc.pid)
        self._end(HelperTimeout("the PDF helper missed the deadline"), stop=True)

    def _failed(self, error: str) -> None:
        log.warning("pdf_helper_failed", error=error, pid=self.proc.pid,
                    exit_code=self.proc.poll())
        self._end(HelperFailed("the PDF helper died"), stop=True)

    def abandon(self) -> None:
        """End the job whatever state it is in (releasing the lock once, killing the helper
        if anything may have been sent)."""
        self._end(HelperFailed("the PDF job was abandoned"), stop=True)

    def _settled(self, future: asyncio.Future[list[str]]) -> None:
        if future.cancelled() and not self.ended:  # the reply is still to come: no reuse
            self._end(None, stop=True)

    def _end(self, result: list[str] | BaseException | None, *, stop: bool) -> None:
        if self.ended:
            return
        self.ended = True
        if self.timer is not None:
            self.timer.cancel()
        self.loop.remove_reader(self.pipes.out_fd)
        self.loop.remove_writer(self.pipes.in_fd)
        try:
            if stop:
                self.helper._stop(wait=False)
        finally:
            self.helper._lock.release()
        if self.future.done():
            return
        if isinstance(result, BaseException):
            self.future.set_exception(result)
        elif result is not None:
            self.future.set_result(result)


class _NothingSent(HelperTimeout):
    """The deadline passed before the helper took the first byte of the job."""


class _Pipes:
    """The helper's stdin and stdout, each registered once with a selector of its own (a
    selector per read or write cost three epoll set-ups for every PDF)."""

    def __init__(self, proc: subprocess.Popen[bytes]):
        assert proc.stdin is not None and proc.stdout is not None
        self.proc = proc
        self.in_fd, self.out_fd = proc.stdin.fileno(), proc.stdout.fileno()
        self._writable = selectors.DefaultSelector()
        self._readable = selectors.DefaultSelector()
        self._writable.register(self.in_fd, selectors.EVENT_WRITE)
        self._readable.register(self.out_fd, selectors.EVENT_READ)

    def close(self) -> None:
        self._writable.close()
        self._readable.close()

    def write_all(self, data: bytes, deadline: float) -> None:
        """Write all of `data` by the deadline (_NothingSent if not even its first byte).

        Writes first and waits only when the pipe is full: an idle helper's pipe has room."""
        view = memoryview(data)
        while view:
            try:
                sent = os.write(self.in_fd, view)
            except BlockingIOError:
                try:
                    _wait(self._writable, deadline)
                except HelperTimeout:
                    if len(view) == len(data):
                        raise _NothingSent("the PDF helper was not ready to read the job") \
                            from None
                    raise
                continue
            view = view[sent:]

    def read_exact(self, size: int, deadline: float) -> bytes:
        chunks: list[bytes] = []
        while size:
            _wait(self._readable, deadline)
            try:
                chunk = os.read(self.out_fd, min(size, 1 << 20))
            except BlockingIOError:
                continue
            if not chunk:
                raise HelperFailed("the PDF helper closed its output")
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)


def _wait(sel: selectors.BaseSelector, deadline: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0 or not sel.select(remaining):
        raise HelperTimeout("the PDF helper missed the deadline")


_shared: PdfHelper | None = None
_shared_lock = threading.Lock()


def shared() -> PdfHelper:
    """This process's helper (created on first use)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = PdfHelper()
        return _shared


def wanted(limits: InspectionSettings) -> bool:
    """Is PDFium to read PDFs (`inspection.pdf_engine`: `pdfium`, or `auto` with pypdfium2
    installed)? If not, pypdf reads them in-process."""
    return limits.pdf_engine == "pdfium" or (limits.pdf_engine == "auto" and _PDFIUM)


def for_inspection(limits: InspectionSettings) -> PdfHelper | None:
    """This process's helper when PDFium is to read PDFs, else None."""
    return shared() if wanted(limits) else None


def warm_up(limits: InspectionSettings) -> None:
    """Start this serving process's helper before the first PDF arrives (blocking: run it in a
    thread). A helper that cannot start is logged, and retried on the first PDF."""
    helper = for_inspection(limits)
    if helper is not None:
        with contextlib.suppress(HelperFailed):
            helper.start()


_PDFIUM = available()
