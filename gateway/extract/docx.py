"""Word documents (DOCX) read straight from their XML: body, tables, headers, footers, notes.

Reading the XML (rather than python-docx's object model) keeps text that python-docx skips:
text boxes, content controls, comments and footnotes. Tables go through the same header-aware
rendering as spreadsheets. The XML parser resolves no entities and fetches nothing.
"""

from __future__ import annotations

import re
import zipfile

from lxml import etree

from gateway.extract import table
from gateway.extract.base import Context
from gateway.extract.sniff import DOCX
from gateway.extract.zip import open_checked

name = "docx"
TYPES = (DOCX,)

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_EXTRA = re.compile(r"^word/(header\d*|footer\d*|footnotes|endnotes|comments)\.xml$")
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


def extract(data: bytes, ctx: Context, location: str, charset: str | None = None) -> None:
    zf = open_checked(data, ctx, location, container=True)
    if zf is None:
        return
    with zf:
        names = ["word/document.xml", *sorted(n for n in zf.namelist() if _EXTRA.match(n))]
        chunks = [_xml_text(zf, n) for n in names if n in zf.namelist()]
    ctx.add_text("\n".join(chunks), location, content_type=DOCX)


def _xml_text(zf: zipfile.ZipFile, member: str) -> str:
    root = etree.fromstring(zf.read(member), _PARSER)
    lines: list[str] = []
    _walk(root, lines)
    return "\n".join(lines)


def _walk(node: etree._Element, lines: list[str]) -> None:
    for child in node:
        if child.tag == W + "p":
            lines.append(_paragraph(child))
        elif child.tag == W + "tbl":
            rows = [[_cell(tc) for tc in tr.iterchildren(W + "tc")]
                    for tr in child.iterchildren(W + "tr")]
            lines.extend(table.render(rows))
        else:
            _walk(child, lines)


def _paragraph(p: etree._Element) -> str:
    out = []
    for el in p.iter(W + "t", W + "tab", W + "br", W + "cr", W + "delText"):
        out.append((el.text or "") if el.tag in (W + "t", W + "delText") else " ")
    return "".join(out)


def _cell(tc: etree._Element) -> str:
    return " ".join(_paragraph(p) for p in tc.iter(W + "p"))
