"""Turning uploaded bytes into classification results, off the event loop and under a bounded queue.

:func:`classify_uploads` is the library function (sync, CPU-bound): sniff, check limits, decode,
hash, read EXIF GPS, run the model, build the ARCHITECTURE.md result for each photo. The HTTP
routes (``/v1/classify`` and ``/v1/submissions``) run it through :class:`InferencePool`, which
holds a few worker threads and a bounded number of waiting requests: when it is full, requests
are refused at once with 503 + ``Retry-After`` instead of piling up in memory.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar

from data.images import ImageError, ImageInfo, ImageLimits, probe_image, sniff_format
from serve.engine import Engine, build_result
from serve.errors import ApiError
from serve.photos import DecodedPhoto, check_size, decode_photo, reason

__all__ = [
    "DecodedPhoto",
    "InferencePool",
    "Ticket",
    "check_upload",
    "classify_uploads",
    "decode_upload",
    "image_error",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

_STATUS_BY_CODE = {
    "empty": 400,
    "corrupt": 400,
    "unsupported": 415,
    "too_large": 413,
    "too_many_pixels": 413,
    "decoded_too_large": 413,
    "too_small": 422,
    "blank": 422,
}
_SUPPORTED = "JPEG, PNG, WebP, HEIC/HEIF, BMP, GIF, TIFF"


def image_error(index: int, exc: ImageError) -> ApiError:
    """The HTTP error for a photo that could not be used, naming its position, never its file name."""
    return ApiError(_STATUS_BY_CODE.get(exc.code, 400), exc.code, f"image[{index}]: {reason(exc)}")


@contextmanager
def _decoding(index: int) -> Iterator[None]:
    """Map decoder failures of upload ``index`` to a 4xx :class:`ApiError`."""
    try:
        yield
    except ImageError as exc:
        raise image_error(index, exc) from exc
    except ApiError:
        raise
    except Exception as exc:  # a decoder bug must not turn a bad upload into a 500
        log.warning("image[%d]: decoder raised %s; answered 400", index, type(exc).__name__)
        raise ApiError(400, "corrupt", f"image[{index}]: the photo could not be decoded") from exc


def check_upload(data: bytes, *, index: int, limits: ImageLimits) -> ImageInfo:
    """Refuse an upload from its bytes and header alone (empty, over-size, unsupported, pixel or
    decoded-size bomb, too small to show a camera).

    The format is sniffed from the bytes (the declared type and file name are ignored).
    """
    if not data:
        raise ApiError(400, "empty", f"image[{index}]: empty file (0 bytes); upload the photo again")
    if len(data) > limits.max_bytes:
        raise ApiError(413, "too_large", f"image[{index}]: over the limit of {limits.max_bytes:,} bytes")
    if sniff_format(data[:64]) is None:
        raise ApiError(
            415, "unsupported", f"image[{index}]: not a photo camid reads; supported: {_SUPPORTED}"
        )
    with _decoding(index):
        info = probe_image(data, limits=limits)
        check_size(info)
        return info


def decode_upload(
    data: bytes, *, index: int, limits: ImageLimits, min_side: int | None = None
) -> DecodedPhoto:
    """Check and decode one upload; raise :class:`ApiError` (400/413/415) when it is not usable."""
    info = check_upload(data, index=index, limits=limits)
    with _decoding(index):
        return decode_photo(data, limits=limits, min_side=min_side, info=info)


def classify_uploads(
    engine: Engine, uploads: Sequence[bytes], *, limits: ImageLimits, heatmap: bool = False
) -> list[dict[str, Any]]:
    """Classify photos given as bytes; one ARCHITECTURE.md result dict per photo, in order.

    The first unusable photo fails the whole call with an :class:`ApiError` naming its index; every
    header is checked before any photo is decoded. Photos are decoded and classified one at a time
    so at most one full-size decoded picture is in memory per request. CPU-bound: call it from a
    worker thread (:class:`InferencePool`), not from the event loop.
    """
    for i, data in enumerate(uploads):
        check_upload(data, index=i, limits=limits)
    min_side = engine.min_side
    results = []
    for i, data in enumerate(uploads):
        photo = decode_upload(data, index=i, limits=limits, min_side=min_side)
        (prediction,) = engine.classify([photo.image], heatmap=heatmap, sizes=[(photo.width, photo.height)])
        results.append(
            build_result(
                prediction,
                engine.info,
                **photo.facts(),
            )
        )
    return results


class Ticket:
    """A reserved place in an :class:`InferencePool`; runs one job (see :meth:`InferencePool.admit`)."""

    def __init__(self, pool: InferencePool) -> None:
        self.pool = pool
        self.handed_over = False

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` in a worker thread; 503 ``timeout`` when it is too slow."""
        if self.handed_over:
            raise RuntimeError("a ticket runs one job; admit() again for another")
        self.handed_over = True
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self.pool.executor, functools.partial(fn, *args, **kwargs))
        future.add_done_callback(self.pool.release)  # the place is freed when the thread is done
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.pool.timeout_s)
        except TimeoutError as exc:
            raise ApiError(
                503,
                "timeout",
                f"classification took longer than {self.pool.timeout_s:g} s; retry later",
                headers={"Retry-After": self.pool.retry_after},
            ) from exc


class InferencePool:
    """A few worker threads plus a bounded wait list; refuses work with 503 when both are full.

    ``pending`` counts requests admitted and not finished: waiting for a thread or running.
    Requests are admitted *after* their upload has been read (:mod:`serve.uploads` bounds slow and
    large uploads), so a slow sender holds no place; :meth:`check_room` refuses a request at once,
    before its upload is read, when the pool is already full. A job that outlives ``timeout_s`` is
    answered with 503 ``timeout`` but keeps its place until the thread really finishes, so slow
    photos cannot grow the backlog.
    """

    def __init__(
        self, *, threads: int = 1, queue_size: int = 8, timeout_s: float = 30.0, retry_after_s: int = 2
    ) -> None:
        self.capacity = threads + queue_size
        self.timeout_s = timeout_s
        self.retry_after = str(retry_after_s)
        self.pending = 0
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="camid-infer")

    def release(self, _: object = None) -> None:
        self.pending -= 1

    def check_room(self) -> None:
        """503 ``overloaded`` + ``Retry-After`` when every place is taken (nothing is reserved)."""
        if self.pending >= self.capacity:
            raise ApiError(
                503,
                "overloaded",
                f"the server is busy ({self.pending} requests in progress); retry in {self.retry_after} s",
                headers={"Retry-After": self.retry_after},
            )

    @asynccontextmanager
    async def admit(self) -> AsyncIterator[Ticket]:
        """Reserve a place (503 ``overloaded`` + ``Retry-After`` when full) for one request's job."""
        self.check_room()
        self.pending += 1
        ticket = Ticket(self)
        try:
            yield ticket
        finally:
            if not ticket.handed_over:
                self.release()

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Admit and run ``fn(*args, **kwargs)`` in a worker thread; 503 when saturated or too slow."""
        async with self.admit() as ticket:
            return await ticket.run(fn, *args, **kwargs)

    def close(self) -> None:
        """Stop the worker threads; queued jobs are cancelled."""
        self.executor.shutdown(wait=False, cancel_futures=True)
