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
- more than ``max_files`` files is a 413 ``too_many_files``, refused at the extra file's headers,
  before its body arrives; every text field counts against ``max_fields`` (422
  ``too_many_fields``), and header lines are bounded in number and length (400 ``bad_multipart``),
  so a body of a million empty fields is refused within its first kilobytes;
- an upload that takes longer than ``timeout_s`` to arrive is a 408 ``upload_timeout``; one that
  arrives slower than ``min_rate`` bytes/s on average, once ``grace_s`` have passed, is a 408
  ``upload_too_slow`` (checked while waiting, so a client that stops sending is cut too);
- the submitted file name is parsed only to tell files from fields and is never kept.

Uploads are read *before* a request takes a place in the inference queue, so slow senders hold
no inference place. :class:`UploadGate` bounds what they can hold instead: uploads in progress
per client address (429 ``too_many_uploads``) and the bytes held by all requests together (503
``overloaded``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from serve.errors import ApiError

__all__ = ["Allowance", "FilePart", "MultipartForm", "UploadGate", "UploadLimits", "read_multipart"]

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
    min_rate: int = 4_096  # bytes/s averaged since the start; 0 turns the check off
    grace_s: float = 10.0  # the minimum rate is enforced from this many seconds on
    max_headers: int = 16  # header lines per part
    max_header_bytes: int = 8_192  # bytes in one header line

    def for_one_file(self, max_field_bytes: int | None = None) -> UploadLimits:
        """These limits for a request that carries exactly one file (and short text fields)."""
        field_bytes = self.max_field_bytes if max_field_bytes is None else max_field_bytes
        return replace(
            self,
            max_files=1,
            max_field_bytes=field_bytes,
            max_request_bytes=min(self.max_request_bytes, self.max_bytes + 1_048_576),
        )


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
        self.n_fields = 0
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

    def _header_end(self) -> None:  # the parser bounds their number and length (max_headers...)
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
                most = self.limits.max_files
                wanted = "exactly one photo" if most == 1 else f"at most {most}"
                raise ApiError(
                    413,
                    "too_many_files",
                    f"more than {self.limits.max_files} file(s) in one request; send {wanted}",
                )
        else:
            self.n_fields += 1  # every field counts, also repeats of one name and empty names
            if self.n_fields > self.limits.max_fields:
                raise ApiError(
                    422, "too_many_fields", f"more than {self.limits.max_fields} form fields in one request"
                )

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        self._size += end - start
        limit = self.limits.max_bytes if self._is_file else self.limits.max_field_bytes
        if self._size > limit:
            if self._is_file:
                what = f"{self._name}[{self.n_files - 1}]" if self._name != _IGNORED else "a file"
                raise ApiError(
                    413, "too_large", f"{what} is over the limit of {limit:,} bytes; send a smaller photo"
                )
            raise ApiError(
                422,
                "field_too_long",
                f"field {self._name[:40]!r} is too long: over the limit of {limit:,} bytes",
            )
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


def _patience(limits: UploadLimits, received: int, elapsed: float) -> float:
    """Seconds to wait for more bytes before the upload breaks its deadline or the minimum rate."""
    until = limits.timeout_s
    if limits.min_rate > 0:
        until = min(until, max(limits.grace_s, received / limits.min_rate))
    return max(until - elapsed, 0.0)


def _late(limits: UploadLimits, received: int) -> ApiError:
    """The 408 for an upload that stopped arriving in time: too slow, or past the deadline."""
    if limits.min_rate > 0 and max(limits.grace_s, received / limits.min_rate) < limits.timeout_s:
        return ApiError(
            408,
            "upload_too_slow",
            f"the upload arrived slower than {limits.min_rate:,} bytes/s; send it again on a "
            "better connection or as a smaller photo",
        )
    return ApiError(408, "upload_timeout", f"upload not received within {limits.timeout_s:g} s")


async def _feed(
    request: Request, parser: MultipartParser, limits: UploadLimits, allowance: Allowance | None
) -> None:
    loop = asyncio.get_running_loop()
    start, received = loop.time(), 0
    chunks = request.stream().__aiter__()
    while True:
        try:
            async with asyncio.timeout(_patience(limits, received, loop.time() - start)):
                chunk = await anext(chunks)
        except StopAsyncIteration:
            break
        except TimeoutError as exc:
            raise _late(limits, received) from exc
        received += len(chunk)
        if received > limits.max_request_bytes:
            raise _body_too_large(limits)
        if allowance is not None:
            allowance.take(len(chunk))
        parser.write(chunk)
    parser.finalize()


def _malformed(exc: MultipartParseError, limits: UploadLimits) -> ApiError:
    """The 400 for a body python-multipart refused; its own messages hold byte reprs, so not those."""
    reason = str(exc)
    if reason.startswith("Maximum header count"):
        return ApiError(400, "bad_multipart", f"a part has more than {limits.max_headers} header lines")
    if reason.startswith("Maximum header size"):
        too_long = f"a part's header line is over {limits.max_header_bytes:,} bytes"
        return ApiError(400, "bad_multipart", too_long)
    return ApiError(400, "bad_multipart", "malformed multipart/form-data body")


def _declared_length(request: Request, limits: UploadLimits) -> None:
    """Refuse at once a body whose Content-Length is over this request's limit."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_request_bytes:
        raise _body_too_large(limits)


def _body_too_large(limits: UploadLimits) -> ApiError:
    over = f"request body is over {limits.max_request_bytes:,} bytes"
    if limits.max_files == 1:  # one photo per request (the submit page, submissions): that photo is too large
        return ApiError(
            413,
            "too_large",
            f"{over}: the photo is too large (at most {limits.max_bytes:,} bytes); send a smaller one",
        )
    return ApiError(413, "too_large", f"{over}; send fewer photos")


async def read_multipart(
    request: Request,
    *,
    file_fields: frozenset[str] = frozenset({"image"}),
    limits: UploadLimits,
    allowance: Allowance | None = None,
) -> MultipartForm:
    """Parse a multipart/form-data body into memory, refusing it as soon as a limit is passed.

    Parts named in ``file_fields`` (and any part with a file name) are files; other parts are
    short text fields. Every byte received is taken from ``allowance`` (see :class:`UploadGate`).
    Raises :class:`ApiError` (400, 408, 413, 415, 422, 503) for requests that break a rule.
    """
    collector = _Collector(file_fields, limits)
    parser = MultipartParser(
        _boundary(request),
        collector.callbacks(),  # type: ignore[arg-type]
        max_header_count=limits.max_headers,
        max_header_size=limits.max_header_bytes,
    )
    _declared_length(request, limits)
    try:
        await _feed(request, parser, limits, allowance)
    except MultipartParseError as exc:
        raise _malformed(exc, limits) from exc
    except ClientDisconnect as exc:
        raise ApiError(400, "client_disconnected", "the client closed the connection mid-upload") from exc
    if not collector.complete:
        raise ApiError(400, "bad_multipart", "multipart body ended before its closing boundary")
    return collector.form


class Allowance:
    """The bytes one request holds under an :class:`UploadGate`; given back when it finishes."""

    def __init__(self, gate: UploadGate) -> None:
        self.gate = gate
        self.bytes = 0

    def take(self, n: int) -> None:
        """Hold ``n`` more bytes; 503 ``overloaded`` when all uploads together would pass the budget."""
        gate = self.gate
        if gate.buffered + n > gate.max_buffered_bytes:
            raise ApiError(
                503,
                "overloaded",
                f"the server is busy receiving other uploads; retry in {gate.retry_after} s",
                headers={"Retry-After": gate.retry_after},
            )
        gate.buffered += n
        self.bytes += n


class UploadGate:
    """Bounds on the uploads of all requests: how many per client address, how many bytes in all.

    Used from the event loop only (no locks). A request enters before it reads its body and leaves
    when it has been answered, so ``buffered`` counts the bytes of uploads being received, waiting
    for inference or being classified.
    """

    def __init__(self, *, per_client: int, max_buffered_bytes: int, retry_after_s: int = 2) -> None:
        self.per_client = per_client
        self.max_buffered_bytes = max_buffered_bytes
        self.retry_after = str(retry_after_s)
        self.active = 0
        self.buffered = 0
        self._by_client: dict[str, int] = {}

    @contextmanager
    def enter(self, client: str) -> Iterator[Allowance]:
        """Hold an upload place for ``client``; 429 ``too_many_uploads`` when it has all of its own."""
        count = self._by_client.get(client, 0)
        if count >= self.per_client:
            raise ApiError(
                429,
                "too_many_uploads",
                f"{count} uploads from your address are already in progress; wait for them to finish",
                headers={"Retry-After": self.retry_after},
            )
        self._by_client[client] = count + 1
        self.active += 1
        allowance = Allowance(self)
        try:
            yield allowance
        finally:
            self.active -= 1
            self.buffered -= allowance.bytes
            left = self._by_client[client] - 1
            if left:
                self._by_client[client] = left
            else:
                del self._by_client[client]
