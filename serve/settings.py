"""Server configuration: environment variables with the ``CAMID_`` prefix (pydantic-settings).

Settings are built by the caller and passed to :func:`serve.app.create_app`; nothing here is
read at import time. Every field can be set as ``CAMID_<FIELD>`` (e.g. ``CAMID_PORT=9000``,
``CAMID_CORS_ORIGINS='["https://map.example"]'``) or in a ``.env`` file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LogLevel = Literal["debug", "info", "warning", "error", "critical"]


def _default_model_path() -> Path:
    from serve.engine import default_model_path

    return Path(default_model_path())


class Settings(BaseSettings):
    """Everything the HTTP service needs to know; defaults are safe for a single-host deployment."""

    model_config = SettingsConfigDict(env_prefix="CAMID_", env_file=".env", extra="ignore")

    model_path: Path = Field(default_factory=_default_model_path, description="the exported ONNX model")
    models_dir: Path | None = Field(
        default=None,
        description="the model registry (`camid model`); when it has a live model the server runs that "
        "one instead of model_path and switches to each newly promoted one",
    )
    model_watch_s: float = Field(
        default=2.0, ge=0, description="seconds between checks of the registry's live model (0: off)"
    )
    shadow_model: Path | None = Field(
        default=None,
        description="a candidate .onnx that scores every new submission beside the live model, "
        "without affecting decisions (`camid model shadow-report` shows where they disagree)",
    )
    shadow_interval_s: float = Field(default=2.0, gt=0, description="seconds between shadow-scoring rounds")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, description="uvicorn worker processes (each loads its own model)")

    max_bytes: int = Field(default=25_000_000, ge=1, description="largest accepted photo, in bytes")
    max_pixels: int = Field(default=50_000_000, ge=1, description="largest accepted photo, width x height")
    max_files_per_request: int = Field(default=16, ge=1)
    max_decoded_bytes: int = Field(
        default=160_000_000,
        ge=1,
        description="largest decoded photo, width x height x bands x bytes per sample, read from the "
        "header before decoding (160 MB: a 50-MP 8-bit RGB photo; a 16-bit or float image needs more)",
    )

    inference_threads: int = Field(default=1, ge=1, le=8, description="threads running decode + inference")
    queue_size: int = Field(default=8, ge=0, description="requests allowed to wait for an inference thread")
    request_timeout_s: float = Field(default=30.0, gt=0, description="classification time limit per request")
    upload_timeout_s: float = Field(
        default=120.0, gt=0, description="time allowed to receive one request's upload"
    )
    upload_min_rate: int = Field(
        default=4_096, ge=0, description="slowest upload accepted, bytes/s averaged from its start (0: off)"
    )
    upload_grace_s: float = Field(default=10.0, gt=0, description="seconds before upload_min_rate applies")
    uploads_per_client: int = Field(
        default=4, ge=1, description="uploads in progress at once from one client address"
    )
    upload_buffer_bytes: int = Field(
        default=1_000_000_000,
        ge=1,
        description="bytes of uploads held in memory by all requests together (at least one whole request)",
    )
    retry_after_s: int = Field(default=2, ge=1, description="Retry-After sent with 503 when overloaded")
    ort_threads: int | None = Field(
        default=None, ge=1, description="onnxruntime intra-op threads (None: auto)"
    )

    cors_origins: list[str] = Field(default_factory=list, description="CORS off when empty")
    data_dir: Path = Path("var")
    database_url: str | None = Field(default=None, description="default: sqlite:///<data_dir>/camid.sqlite3")
    submissions_per_minute: int = Field(default=10, ge=1, description="per-client submission rate limit")
    classify_per_minute: int = Field(default=60, ge=1, description="per-client /v1/classify rate limit")
    rejected_retention_days: int | None = Field(
        default=90,
        ge=0,
        description="`camid submissions purge` deletes those rejected longer ago (None: never)",
    )
    four_eyes: bool = Field(
        default=False,
        description="a second moderator must agree before a camera goes public (first approval: "
        "status awaiting_second)",
    )
    claim_minutes: float = Field(
        default=10.0, gt=0, le=1440, description="how long a moderator's claim on an opened item lasts"
    )
    public_location_decimals: int = Field(
        default=4, ge=0, le=6, description="decimals of the public camera exports' lat/lon (4: ~10 m)"
    )
    forwarded_allow_ips: str | None = Field(
        default=None,
        description="proxies trusted to send X-Forwarded-For/-Proto: comma-separated IPs or CIDRs, '*' "
        "for any (None: the client address is the TCP peer's)",
    )
    log_level: LogLevel = "info"
    # the public map and the camera registry (#16)
    map_tile_url: str = Field(
        default="https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        description="the map page's tile URL template; the visitor's browser loads the tiles ('' : none)",
    )
    map_tile_attribution: str = Field(
        default='&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors',
        description="the credit the tile provider asks for, shown on the map",
    )
    districts_path: Path | None = Field(
        default=None,
        description="GeoJSON (Multi)Polygons naming districts: the map's district filter, /v1/stats, "
        "and the official-list comparison's per-district counts (None: no districts)",
    )
    official_match_m: float = Field(
        default=50.0, gt=0, description="an official entry matches the nearest verified camera this close"
    )

    @model_validator(mode="after")
    def _default_database(self) -> Settings:
        if self.database_url is None:
            self.database_url = f"sqlite:///{(self.data_dir / 'camid.sqlite3').as_posix()}"
        return self

    @property
    def max_request_bytes(self) -> int:
        """Largest whole request body: every file at its limit plus 1 MiB for multipart framing."""
        return self.max_files_per_request * self.max_bytes + 1_048_576
