"""ZIP archives, recursively, with guards against decompression bombs and encrypted members.

The same guard protects XLSX and DOCX, which are ZIP files too: declared sizes are checked
before anything is inflated (Python's zipfile never inflates past a member's declared size, so
the declared sizes are a real bound), against `max_part_bytes` and `max_expansion_ratio`.
"""

from __future__ import annotations

import io
import zipfile

from gateway import extract as extractors
from gateway.extract.base import Context

name = "zip"
TYPES = ("application/zip",)
_SMALL = 1024 * 1024  # below this, a high ratio is just very repetitive text, not a bomb


def open_checked(data: bytes, ctx: Context, location: str, *,
                 container: bool = False) -> zipfile.ZipFile | None:
    """Open `data` as a ZIP if it is safe to inflate; otherwise record why and return None."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError, ValueError,
            EOFError):  # NotImplementedError: a "zip file version" zipfile cannot read
        ctx.problem(location, "corrupt archive")
        return None
    limits = ctx.budget.limits
    total = sum(i.file_size for i in infos)
    reason = None
    if total > _SMALL and total > max(len(data), 1) * limits.max_expansion_ratio:
        reason = "expansion ratio limit (possible decompression bomb)"
    elif any(i.file_size > limits.max_part_bytes for i in infos):
        reason = "archive member size limit"
    elif container and any(i.flag_bits & 0x1 for i in infos):
        reason = "encrypted"
    if reason:
        ctx.problem(location, reason)
        zf.close()
        return None
    return zf


def extract(data: bytes, ctx: Context, location: str, charset: str | None = None) -> None:
    zf = open_checked(data, ctx, location)
    if zf is None:
        return
    with zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            where = f"{location}/{info.filename}"
            if ctx.out_of_time(where) or not ctx.take_part(where):
                return
            member = _read(zf, info, ctx, where)
            if member is not None:
                shown = where.removeprefix("attachment ")  # report.zip/inner.csv
                extractors.extract_file(member, ctx.deeper(), where, filename=shown)


def _read(zf: zipfile.ZipFile, info: zipfile.ZipInfo, ctx: Context, where: str) -> bytes | None:
    if info.flag_bits & 0x1:
        ctx.problem(where, "encrypted")
        return None
    try:
        with zf.open(info) as handle:
            return handle.read(ctx.budget.limits.max_part_bytes)
    except (zipfile.BadZipFile, NotImplementedError, OSError, ValueError, EOFError,
            RuntimeError):
        ctx.problem(where, "corrupt archive member")
        return None
