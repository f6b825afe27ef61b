"""Reading uploaded photos from a multipart request: in memory only, with limits enforced as it streams.

Why not Starlette's ``request.form()`` / FastAPI's ``UploadFile``: Starlette spools every file part
into a ``SpooledTemporaryFile`` whose in-memory limit is 1 MiB, so any larger photo is written to a
temporary file on disk before our code sees it, and the per-file byte limit could only be checked
after the whole part had been received. Citizens' photos (with their EXIF GPS) must never touch
the disk of a service that promises to store nothing, so :func:`read_multipart` drives
python-multipart's push parser over ``request.stream()`` itself and keeps each part in a
``bytearray``:

- a file part stops being read as soon as it passes ``max_bytes`` (413 ``too_large``);
- the whole body stops at ``max_request_bytes``, with or without a Content-Length header;
- more than ``max_files`` files is a 413 ``too_many_files``; text fields are capped too;
- an upload that takes longer than ``timeout_s`` to arrive is a 408 ``upload_timeout``;
- the submitted file name is parsed only to tell files from fields and is never kept.

Memory use is bounded by ``max_files * max_bytes`` per request, and the inference queue bounds
the number of requests held at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from serve.errors import ApiError

__all__ = ["FilePart", "MultipartForm", "UploadLimits", "read_multipart"]

_IGNORED = "\x00ignored"  # name of a part we neither keep nor care about


@dataclass(frozen=True)
class UploadLimits:
    """Bounds on one multipart request."""

    max_bytes: int = 25_000_000
    max_files: int = 16
    max_request_bytes: int = 16 * 25_000_000 + 1_048_576
    max_field_bytes: int = 16_384
    max_fields: int = 32
    timeout_s: float = 120.0


@dataclass(frozen=True)
class FilePart:
    """One uploaded file: the bytes and the content type the client declared (not trusted)."""

    field: str
    data: bytes
    declared_type: str | None = None


@dataclass
class MultipartForm:
    """The parts of a multipart request, file names dropped."""

    files: list[FilePart] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)

    def files_in(self, name: str) -> list[bytes]:
        """The bytes of every file sent in field ``name``, in the order they were sent."""
        return [f.data for f in self.files if f.field == name]


class _Collector:
    """python-multipart callbacks that collect parts in memory and enforce the limits."""

    def __init__(self, file_fields: frozenset[str], limits: UploadLimits) -> None:
        self.file_fields = file_fields
        self.limits = limits
        self.form = MultipartForm()
        self.n_files = 0
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._headers: dict[bytes, bytes] = {}
        self._name = _IGNORED
        self._is_file = False
        self._data = bytearray()
        self._size = 0
        self.complete = False

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {
            "on_part_begin": self._part_begin,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_header_field": lambda d, s, e: self._header_name.extend(d[s:e]),
            "on_header_value": lambda d, s, e: self._header_value.extend(d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_end": self._end,
        }

    def _end(self) -> None:
        self.complete = True

    def _part_begin(self) -> None:
        self._headers, self._data, self._size = {}, bytearray(), 0

    def _header_end(self) -> None:
        if len(self._headers) < 16:
            self._headers[bytes(self._header_name).lower()] = bytes(self._header_value[:1024])
        self._header_name.clear()
        self._header_value.clear()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        self._is_file = name in self.file_fields or b"filename" in options
        self._name = name if (name in self.file_fields or not self._is_file) else _IGNORED
        if self._is_file:
            self.n_files += 1
            if self.n_files > self.limits.max_files:
                raise ApiError(
                    413,
                    "too_many_files",
                    f"more than {self.limits.max_files} files in one request; send fewer",
                )
        elif len(self.form.fields) >= self.limits.max_fields:
            raise ApiError(422, "too_many_fields", f"more than {self.limits.max_fields} form fields")

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        self._size += end - start
        limit = self.limits.max_bytes if self._is_file else self.limits.max_field_bytes
        if self._size > limit:
            what = f"file {self._name}[{self.n_files - 1}]" if self._is_file else f"field {self._name!r}"
            code = "too_large" if self._is_file else "field_too_large"
            raise ApiError(413, code, f"{what} is over the limit of {limit:,} bytes; send a smaller photo")
        if self._name != _IGNORED:
            self._data.extend(data[start:end])

    def _part_end(self) -> None:
        if self._name == _IGNORED:
            return
        if self._is_file:
            declared = self._headers.get(b"content-type")
            ctype = declared.decode("latin-1")[:100] if declared else None
            self.form.files.append(FilePart(self._name, bytes(self._data), ctype))
        else:
            self.form.fields[self._name] = self._data.decode("utf-8", "replace")


def _boundary(request: Request) -> bytes:
    content_type, params = parse_options_header(request.headers.get("content-type"))
    if content_type != b"multipart/form-data":
        if not content_type and request.headers.get("content-length", "0") == "0":
            raise ApiError(422, "missing_field", "no form sent; send the photo as multipart field 'image'")
        raise ApiError(
            415, "unsupported_media_type", "send the photos as multipart/form-data (field 'image')"
        )
    boundary = params.get(b"boundary")
    if not boundary or len(boundary) > 200:
        raise ApiError(400, "bad_multipart", "multipart/form-data without a valid boundary")
    return boundary


async def _feed(request: Request, parser: MultipartParser, max_request_bytes: int) -> None:
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > max_request_bytes:
            raise ApiError(
                413, "too_large", f"request body is over {max_request_bytes:,} bytes; send fewer photos"
            )
        parser.write(chunk)
    parser.finalize()


async def read_multipart(
    request: Request, *, file_fields: frozenset[str] = frozenset({"image"}), limits: UploadLimits
) -> MultipartForm:
    """Parse a multipart/form-data body into memory, refusing it as soon as a limit is passed.

    Parts named in ``file_fields`` (and any part with a file name) are files; other parts are
    short text fields. Raises :class:`ApiError` (400, 413, 415, 422) for requests that break a rule.
    """
    collector = _Collector(file_fields, limits)
    parser = MultipartParser(_boundary(request), collector.callbacks())  # type: ignore[arg-type]
    try:
        async with asyncio.timeout(limits.timeout_s):
            await _feed(request, parser, limits.max_request_bytes)
    except TimeoutError as exc:
        raise ApiError(408, "upload_timeout", f"upload not received within {limits.timeout_s:g} s") from exc
    except MultipartParseError as exc:
        raise ApiError(400, "bad_multipart", "malformed multipart/form-data body") from exc
    except ClientDisconnect as exc:
        raise ApiError(400, "client_disconnected", "the client closed the connection mid-upload") from exc
    if not collector.complete:
        raise ApiError(400, "bad_multipart", "multipart body ended before its closing boundary")
    return collector.form
