"""What the edXML reader (``eoffice.edxml_parse``) and its attachment reader
(``eoffice.edxml_attachments``) share: the package size limit, the refusal, the attachment, and
the namespace-blind element helpers. Neither module imports the other for them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from lxml import etree

from storage.errors import Invalid

MAX_PACKAGE_BYTES = 200 * 1024 * 1024


class PackageError(Invalid):
    """A package that cannot be read unambiguously; ``problem`` says which check failed."""

    def __init__(self, message: str, problem: str, **details: Any) -> None:
        super().__init__(message, problem=problem, **details)
        self.problem = problem


@dataclass
class Attachment:
    name: str
    content_type: str
    data: bytes
    description: str = ""
    content_id: str = ""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _local(el: Any) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def _child(el: etree._Element | None, *names: str) -> etree._Element | None:
    if el is None:
        return None
    for c in el:
        if _local(c) in names:
            return c
    return None


def _path(el: etree._Element | None, *path: str) -> etree._Element | None:
    for name in path:
        el = _child(el, *name.split("|"))
    return el


def _find(el: etree._Element | None, name: str) -> etree._Element | None:
    if el is None:
        return None
    for c in el.iter():
        if _local(c) in name.split("|"):
            return c
    return None


def _text(el: etree._Element | None, *path: str) -> str:
    node = _path(el, *path) if path else el
    return "".join(node.itertext()).strip() if node is not None else ""
