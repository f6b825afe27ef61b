"""Groups of verified photos by the camera registry's physical cameras, for the training
export's ``group`` column (group-aware splits) and the promotion gate's resampling.

Every photo of one physical camera must fall in one group. The registry names the camera(s) each
verified photo shows (``camera_photos`` rows), which is better than a 50 m location cluster: GPS
error can put two
photos of one camera more than 50 m apart, and two cameras can stand within 50 m of each other.

Photos are joined (transitively) when they show a common camera, are the same photo (sha256), or
one repeats the other (``duplicate_of``). A group with a camera is named ``camera-<id>`` after
its smallest camera id. Photos showing no camera (``no_camera`` photos, or verified before the
registry knew them) fall back to 50 m location clusters among themselves
(``loc-...``), or their own group when they have no location.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from sqlalchemy import select

from data.dedup import UnionFind
from data.geo import distance_m
from serve.store import Camera, CameraPhoto, Store, Submission

__all__ = ["GRID_M", "camera_groups", "group_photos", "location_group", "location_groups", "registry_cameras"]

GRID_M = 50.0


def location_group(lat: float, lon: float, grid_m: float = GRID_M) -> str:
    """The ~``grid_m`` grid cell holding a point, e.g. ``loc-99781-35417``."""
    row, col = _cell(lat, lon, grid_m)
    return f"loc-{row}-{col}"


def location_groups(subs: Sequence[Submission], radius_m: float = GRID_M) -> dict[str, str]:
    """Submission id -> group: photos within ``radius_m`` of each other (transitively) share one.

    The group is named after the ~50 m grid cell of the cluster's first photo; photos without a
    location keep the group of the submission they repeat (``duplicate_of``) or their own.
    """
    located = [s for s in subs if s.lat is not None and s.lon is not None]
    uf = UnionFind(len(located))
    cells: dict[tuple[int, int], list[int]] = {}
    for i, sub in enumerate(located):
        assert sub.lat is not None and sub.lon is not None
        row, col = _cell(sub.lat, sub.lon, radius_m)
        for key in ((row + dr, col + dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1)):
            for j in cells.get(key, []):
                other = located[j]
                assert other.lat is not None and other.lon is not None
                if distance_m(sub.lat, sub.lon, other.lat, other.lon) <= radius_m:
                    uf.union(i, j)
        cells.setdefault((row, col), []).append(i)
    groups: dict[str, str] = {}
    for members in uf.components():
        first = located[members[0]]
        assert first.lat is not None and first.lon is not None
        for i in members:
            groups[located[i].id] = location_group(first.lat, first.lon, radius_m)
    for sub in subs:
        groups.setdefault(sub.id, groups.get(sub.duplicate_of or "", f"sub-{sub.duplicate_of or sub.id}"))
    return groups


def _cell(lat: float, lon: float, grid_m: float) -> tuple[int, int]:
    row = math.floor(lat * 111_320.0 / grid_m)
    col = math.floor(lon * 111_320.0 * math.cos(math.radians(round(lat, 1))) / grid_m)
    return row, col


def _resolve(camera_id: str, merged_into: Mapping[str, str]) -> str:
    seen: set[str] = set()
    while camera_id in merged_into and camera_id not in seen:
        seen.add(camera_id)
        camera_id = merged_into[camera_id]
    return camera_id


def registry_cameras(store: Store) -> dict[str, set[str]]:
    """Verified submission id -> the ids of the registry cameras it shows (merged ones resolved).

    The ``camera_photos`` rows are what merge and split keep up to date; a verified submission
    without rows falls back to its ``submissions.camera_id``.
    """
    with store.session() as s:
        rows = s.execute(
            select(CameraPhoto.submission_id, CameraPhoto.camera_id)
            .join(Submission, Submission.id == CameraPhoto.submission_id)
            .where(Submission.status == "verified")
        ).all()
        legacy = s.execute(
            select(Submission.id, Submission.camera_id).where(
                Submission.status == "verified", Submission.camera_id.is_not(None)
            )
        ).all()
        merged = s.execute(select(Camera.id, Camera.merged_into).where(Camera.merged_into.is_not(None))).all()
    merged_into = {str(c): str(t) for c, t in merged}
    shows: dict[str, set[str]] = {}
    for sub_id, cam in rows:
        shows.setdefault(str(sub_id), set()).add(_resolve(str(cam), merged_into))
    for sub_id, legacy_cam in legacy:
        shows.setdefault(str(sub_id), {_resolve(str(legacy_cam), merged_into)})
    return shows


def _join(subs: Sequence[Submission], shows: Mapping[str, set[str]]) -> UnionFind:
    """Union-find over ``subs``: a shared camera, the same photo, or a repeat of one joins two."""
    index = {s.id: i for i, s in enumerate(subs)}
    uf = UnionFind(len(subs))
    first: dict[str, int] = {}
    for i, sub in enumerate(subs):
        for key in [f"sha:{sub.sha256}", *(f"cam:{c}" for c in shows.get(sub.id, ()))]:
            uf.union(i, first.setdefault(key, i))
        if sub.duplicate_of in index:
            uf.union(i, index[str(sub.duplicate_of)])
    no_camera = [s for s in subs if not shows.get(s.id)]
    by_place: dict[str, int] = {}
    for sub_id, place in location_groups(no_camera).items():
        uf.union(index[sub_id], by_place.setdefault(place, index[sub_id]))
    return uf


def group_photos(subs: Sequence[Submission], shows: Mapping[str, set[str]]) -> dict[str, str]:
    """Submission id -> group name, given what each submission shows (see the module docstring)."""
    uf = _join(subs, shows)
    no_camera = location_groups([s for s in subs if not shows.get(s.id)])
    groups: dict[str, str] = {}
    for members in uf.components():
        cams = sorted({c for i in members for c in shows.get(subs[i].id, ())})
        name = f"camera-{cams[0]}" if cams else no_camera[subs[members[0]].id]
        groups.update({subs[i].id: name for i in members})
    return groups


def camera_groups(store: Store) -> dict[str, str]:
    """Verified submission id -> its gate group, from the store's camera registry."""
    return group_photos(store.verified(), registry_cameras(store))
