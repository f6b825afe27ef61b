"""The gate's groups for the verified photos: the camera registry's physical cameras.

The promotion gate resamples whole groups, so every photo of one physical camera must fall in one
group. The registry (:mod:`serve.registry`) names the camera(s) each verified photo shows
(``camera_photos`` rows), which is better than a 50 m location cluster: GPS error can put two
photos of one camera more than 50 m apart, and two cameras can stand within 50 m of each other.

Photos are joined (transitively) when they show a common camera, are the same photo (sha256), or
one repeats the other (``duplicate_of``). A group with a camera is named ``camera-<id>`` after
its smallest camera id. Photos showing no camera (``no_camera`` photos, or verified before the
registry knew them) fall back to the training export's 50 m location clusters among themselves
(``loc-...``), or their own group when they have no location.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import select

from data.dedup import UnionFind
from serve.exports import location_groups
from serve.store import Camera, CameraPhoto, Store, Submission

__all__ = ["camera_groups", "group_photos", "registry_cameras"]


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
