"""The camera registry: which physical camera each verified box shows, and the moderators' edits.

- :func:`attach_verified` runs inside the review transaction that verifies a submission: each of
  its verified camera boxes (or the whole photo when it has none) keeps the camera it showed, or
  joins the nearest camera of the same model within :data:`CAMERA_RADIUS_M` that holds no other
  box of this photo, or starts a new camera ``cam-<submission id>``.
- :func:`candidates` proposes, per box, the cameras it may show ("same as camera cam-…, Huawei
  IPC6625-Z30, 14 m away, 3 photos"): within :data:`CANDIDATE_RADIUS_M` with a compatible model,
  or holding a near-duplicate photo. :func:`assign` applies the moderator's choice.
- :func:`merge` and :func:`split` move photo entries between cameras; nothing is deleted, every
  change is a :class:`CameraEvent` (who, when, what), reviews are never touched.

A camera's location is the mean of its verified photos' locations, ``spread_m`` the farthest of
them from it and ``radius_m`` (at least :data:`MIN_RADIUS_M`) its uncertainty.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from data.dedup import hamming
from data.geo import distance_m, mean_location
from data.labels import LabelSet
from serve.store.models import Moderator, Submission, utcnow
from serve.store.registry_models import CAMERA_STATUSES, MOUNTS, Camera, CameraEvent, CameraPhoto
from serve.store.store import CAMERA_RADIUS_M, NEAR_PHASH_BITS, NotFoundError, model_boxes

CANDIDATE_RADIUS_M = 50.0  # the moderators' page proposes cameras up to this far away
MIN_RADIUS_M = 10.0  # a phone's GPS is rarely better: the least uncertainty a camera is given
MAX_CANDIDATES = 5
_M_PER_DEG_LAT = 111_320.0


class RegistryError(ValueError):
    """A registry edit that contradicts the registry (merging a camera into itself, into a merged one…)."""


class InvalidEdit(RegistryError):
    """A registry edit that names something that does not exist (a mount, a box, a photo entry)."""


@dataclass(frozen=True)
class BoxCamera:
    """One camera a verified submission shows: the index of its box in ``boxes`` (0 and no box
    for a photo verified without boxes) and its label."""

    index: int
    label: str
    box: list[float] | None


@dataclass(frozen=True)
class Candidate:
    """A camera a box may show, as the moderators' page proposes it."""

    camera_id: str
    label: str
    model: str
    distance_m: float | None
    photo_count: int
    same_label: bool
    near_duplicate: bool
    spread_m: float | None = None  # how far the camera's photos lie from its location

    @property
    def text(self) -> str:
        """``same as camera cam-…, Huawei IPC6625-Z30, 14 m away, 3 photos``."""
        where = f", {self.distance_m:.0f} m away" if self.distance_m is not None else ""
        photos = f"{self.photo_count} photo{'s' if self.photo_count != 1 else ''}"
        dup = ", a near-duplicate photo" if self.near_duplicate else ""
        return f"same as camera {self.camera_id}, {self.model}{where}, {photos}{dup}"

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "text": self.text}


def camera_boxes(sub: Submission, labels: LabelSet) -> list[BoxCamera]:
    """The cameras a verified submission shows: its verified boxes of camera classes, or the
    whole photo (index 0, no box) when it has none and its label is a camera."""
    cameras = set(labels.cameras)
    out = [
        BoxCamera(i, str(b["label"]), [float(v) for v in b["box"]])
        for i, b in enumerate(sub.boxes or ())
        if b["label"] in cameras
    ]
    if not out and sub.final_label in cameras:
        out = [BoxCamera(0, str(sub.final_label), None)]
    return out


def proposed_boxes(sub: Submission, labels: LabelSet) -> list[BoxCamera]:
    """The cameras to match: the ones a moderator verified (also while a four-eyes check waits for
    a second moderator), or before any approval the model's (to preview)."""
    if sub.status in ("verified", "awaiting_second"):
        return camera_boxes(sub, labels)
    cameras = set(labels.cameras)
    found = [
        BoxCamera(i, b["label"], b["box"]) for i, b in enumerate(model_boxes(sub)) if b["label"] in cameras
    ]
    return found or ([BoxCamera(0, sub.label, None)] if sub.label in cameras else [])


def record(
    s: Session,
    actor: str,
    action: str,
    camera_id: str,
    *,
    other: str | None = None,
    submission_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one event to the registry's audit trail."""
    s.add(
        CameraEvent(
            created_at=utcnow(),
            actor=actor[:128],
            action=action,
            camera_id=camera_id,
            other_camera_id=other,
            submission_id=submission_id,
            detail=detail,
        )
    )


def _new_camera_id(s: Session, sub_id: str, index: int) -> str:
    base = f"cam-{sub_id}" if index == 0 else f"cam-{sub_id}-{index}"
    taken = set(s.scalars(select(Camera.id).where(Camera.id.like(f"{base}%"))).all())
    if base not in taken:
        return base
    return next(f"{base}-{n}" for n in range(2, len(taken) + 3) if f"{base}-{n}" not in taken)


def new_camera(s: Session, sub: Submission, box: BoxCamera, actor: str) -> Camera:
    """A new camera for one box of ``sub``, located where the photo was taken."""
    cam = Camera(
        id=_new_camera_id(s, sub.id, box.index),
        label=box.label,
        lat=sub.lat,
        lon=sub.lon,
        spread_m=None if sub.lat is None else 0.0,
        radius_m=None if sub.lat is None else MIN_RADIUS_M,
        status="active",
        note="",
        created_at=utcnow(),
        updated_at=utcnow(),
    )
    s.add(cam)
    s.flush()
    record(s, actor, "create", cam.id, submission_id=sub.id, detail={"box_index": box.index})
    return cam


def _near(s: Session, lat: float, lon: float, radius_m: float) -> list[tuple[Camera, float]]:
    """Cameras (not merged) within ``radius_m`` of a point, nearest first."""
    dlat = radius_m / _M_PER_DEG_LAT
    dlon = dlat / max(math.cos(math.radians(lat)), 1e-6)
    rows = s.scalars(
        select(Camera).where(
            Camera.status != "merged",
            Camera.lat.between(lat - dlat, lat + dlat),
            Camera.lon.between(lon - dlon, lon + dlon),
        )
    ).all()
    found = [(c, distance_m(lat, lon, c.lat, c.lon)) for c in rows if c.lat is not None and c.lon is not None]
    return sorted((p for p in found if p[1] <= radius_m), key=lambda p: (p[1], p[0].created_at, p[0].id))


def _duplicate_cameras(s: Session, sub: Submission) -> set[str]:
    """Cameras holding a photo that repeats ``sub`` (same bytes or a look-alike nearby)."""
    root = sub.duplicate_of or sub.id
    ids = select(Submission.id).where((Submission.duplicate_of == root) | (Submission.id == root))
    rows = s.scalars(
        select(CameraPhoto.camera_id).where(
            CameraPhoto.submission_id.in_(ids), CameraPhoto.submission_id != sub.id
        )
    ).all()
    return set(rows)


def _best_match(s: Session, sub: Submission, box: BoxCamera, taken: set[str]) -> Camera | None:
    """The camera this box joins automatically: same label, nearest within 25 m; without a
    location, the camera of a photo it repeats."""
    if sub.lat is not None and sub.lon is not None:
        for cam, _ in _near(s, sub.lat, sub.lon, CAMERA_RADIUS_M):
            if cam.label == box.label and cam.id not in taken:
                return cam
        return None
    for cam_id in sorted(_duplicate_cameras(s, sub)):
        dup = s.get(Camera, cam_id)
        if dup is not None and dup.status != "merged" and dup.label == box.label and dup.id not in taken:
            return dup
    return None


def refresh(s: Session, camera_id: str) -> None:
    """Recompute a camera's location and spread from its photos (verified ones when it has any)."""
    cam = s.get(Camera, camera_id)
    if cam is None:
        return
    rows = s.execute(
        select(Submission.lat, Submission.lon, Submission.status)
        .join(CameraPhoto, CameraPhoto.submission_id == Submission.id)
        .where(CameraPhoto.camera_id == camera_id, Submission.lat.is_not(None), Submission.lon.is_not(None))
    ).all()
    verified = [(float(r.lat), float(r.lon)) for r in rows if r.status == "verified"]
    located = mean_location(verified or [(float(r.lat), float(r.lon)) for r in rows])
    if located is not None:
        cam.lat, cam.lon, cam.spread_m = located.lat, located.lon, located.spread_m
        cam.radius_m = max(located.spread_m, MIN_RADIUS_M)
    cam.updated_at = utcnow()


def _actor(s: Session, moderator_id: int | None, fallback: str) -> str:
    mod = s.get(Moderator, moderator_id) if moderator_id is not None else None
    return mod.name if mod is not None else fallback


def attach_verified(s: Session, submission_id: str, labels: LabelSet, moderator_id: int | None) -> list[str]:
    """Attach a just-verified submission's cameras (in the review's transaction); the camera ids.

    A box that already shows a camera with the same label keeps it; boxes the review removed or
    relabelled leave their camera (audited as ``detach``) and are matched again.
    """
    sub = s.get(Submission, submission_id, populate_existing=True)
    if sub is None:
        raise NotFoundError(f"no submission {submission_id!r}")
    actor = _actor(s, moderator_id, "review")
    wanted = {b.index: b for b in camera_boxes(sub, labels)}
    touched: set[str] = set()
    kept: dict[int, CameraPhoto] = {}
    for photo in s.scalars(select(CameraPhoto).where(CameraPhoto.submission_id == sub.id)).all():
        box = wanted.get(photo.box_index)
        if box is not None and box.label == photo.label:
            photo.box = box.box
            kept[photo.box_index] = photo
            continue
        record(
            s, actor, "detach", photo.camera_id, submission_id=sub.id, detail={"box_index": photo.box_index}
        )
        touched.add(photo.camera_id)
        s.delete(photo)
    s.flush()
    taken = {p.camera_id for p in kept.values()}
    for index, box in sorted(wanted.items()):
        if index in kept:
            continue
        cam = _best_match(s, sub, box, taken) or new_camera(s, sub, box, actor)
        _attach(s, cam.id, sub.id, box, actor)
        taken.add(cam.id)
    ids = [p.camera_id for _, p in sorted(_photos_of(s, sub.id).items())]
    for cam_id in touched | set(ids):
        refresh(s, cam_id)
    s.execute(update(Submission).where(Submission.id == sub.id).values(camera_id=ids[0] if ids else None))
    s.flush()
    return ids


def _photos_of(s: Session, submission_id: str) -> dict[int, CameraPhoto]:
    rows = s.scalars(select(CameraPhoto).where(CameraPhoto.submission_id == submission_id)).all()
    return {p.box_index: p for p in rows}


def _attach(s: Session, camera_id: str, submission_id: str, box: BoxCamera, actor: str) -> None:
    s.add(
        CameraPhoto(
            camera_id=camera_id,
            submission_id=submission_id,
            box_index=box.index,
            label=box.label,
            box=box.box,
            attached_at=utcnow(),
            attached_by=actor[:128],
        )
    )
    s.flush()
    record(s, actor, "attach", camera_id, submission_id=submission_id, detail={"box_index": box.index})


def photo_counts(s: Session, camera_ids: Iterable[str]) -> dict[str, int]:
    """Verified photos (distinct submissions) per camera."""
    ids = list(camera_ids)
    if not ids:
        return {}
    rows = s.execute(
        select(CameraPhoto.camera_id, func.count(func.distinct(CameraPhoto.submission_id)))
        .join(Submission, Submission.id == CameraPhoto.submission_id)
        .where(CameraPhoto.camera_id.in_(ids), Submission.status == "verified")
        .group_by(CameraPhoto.camera_id)
    ).all()
    return {str(cam): int(n) for cam, n in rows}


def _compatible(labels: LabelSet, a: str, b: str) -> bool:
    """Same model, the same form factor, or a generic class (a moderator may have been unsure)."""
    if a == b:
        return True
    if a not in labels or b not in labels:
        return False
    ia, ib = labels.get(a), labels.get(b)
    return ia.form_factor == ib.form_factor or not (ia.target and ib.target)


def _near_duplicate_cameras(s: Session, sub: Submission) -> set[str]:
    """Cameras with a photo whose perceptual hash is within NEAR_PHASH_BITS of ``sub``'s."""
    found = _duplicate_cameras(s, sub)
    rows = s.execute(
        select(CameraPhoto.camera_id, Submission.phash)
        .join(Submission, Submission.id == CameraPhoto.submission_id)
        .where(Submission.id != sub.id)
        .limit(20_000)
    ).all()
    found.update(str(r.camera_id) for r in rows if hamming(r.phash, sub.phash) <= NEAR_PHASH_BITS)
    return found


def _candidates_for(
    s: Session, sub: Submission, box: BoxCamera, labels: LabelSet, near_dups: set[str], current: str | None
) -> list[Candidate]:
    """Cameras other than ``current`` the box may show: same label first, then near duplicates, nearest."""
    pool: dict[str, tuple[Camera, float | None]] = {}
    if sub.lat is not None and sub.lon is not None:
        pool.update({c.id: (c, d) for c, d in _near(s, sub.lat, sub.lon, CANDIDATE_RADIUS_M)})
    for cam_id in near_dups - set(pool):
        cam = s.get(Camera, cam_id)
        if cam is not None and cam.status != "merged":
            far = None
            if None not in (sub.lat, sub.lon, cam.lat, cam.lon):
                far = distance_m(sub.lat, sub.lon, cam.lat, cam.lon)  # type: ignore[arg-type]
            pool[cam_id] = (cam, far)
    pool.pop(current or "", None)
    counts = photo_counts(s, pool)
    out = [
        Candidate(
            camera_id=cam.id,
            label=cam.label,
            model=labels.get(cam.label).display_name if cam.label in labels else cam.label,
            distance_m=None if d is None else round(d, 1),
            photo_count=counts.get(cam.id, 0),
            same_label=cam.label == box.label,
            near_duplicate=cam.id in near_dups,
            spread_m=None if cam.spread_m is None else round(cam.spread_m, 1),
        )
        for cam, d in pool.values()
        if _compatible(labels, cam.label, box.label) or cam.id in near_dups
    ]
    out.sort(
        key=lambda c: (
            not c.same_label,
            not c.near_duplicate,
            math.inf if c.distance_m is None else c.distance_m,
        )
    )
    return out[:MAX_CANDIDATES]


def candidates(s: Session, submission_id: str, labels: LabelSet) -> list[dict[str, Any]]:
    """Per camera box of a submission: its current camera and the cameras it may show instead
    (for a submission not verified yet: per box the model found, what confirming would match)."""
    sub = s.get(Submission, submission_id)
    if sub is None:
        raise NotFoundError(f"no submission {submission_id!r}")
    attached = _photos_of(s, sub.id)
    near_dups = _near_duplicate_cameras(s, sub)
    return [
        {
            "box_index": box.index,
            "label": box.label,
            "box": box.box,
            "camera_id": current,
            "candidates": [c.to_json() for c in _candidates_for(s, sub, box, labels, near_dups, current)],
        }
        for box in proposed_boxes(sub, labels)
        for current in [attached[box.index].camera_id if box.index in attached else None]
    ]


def _live_camera(s: Session, camera_id: str) -> Camera:
    cam = s.get(Camera, camera_id)
    if cam is None:
        raise NotFoundError(f"no camera {camera_id!r}")
    if cam.status == "merged":
        raise RegistryError(f"camera {camera_id} was merged into {cam.merged_into}; use that one")
    return cam


def assign(
    s: Session, submission_id: str, choices: Mapping[int, str], labels: LabelSet, actor: str
) -> list[dict[str, Any]]:
    """Apply a moderator's choice per box (an existing camera id, or ``"new"``); audited.

    The submission must be verified; a box not named keeps its camera; two boxes of one photo
    cannot show the same camera.
    """
    sub = s.get(Submission, submission_id)
    if sub is None:
        raise NotFoundError(f"no submission {submission_id!r}")
    if sub.status != "verified":
        raise RegistryError(f"submission {submission_id} is {sub.status}; only verified photos show cameras")
    boxes = {b.index: b for b in camera_boxes(sub, labels)}
    if unknown := sorted(set(choices) - set(boxes)):
        raise InvalidEdit(f"submission {submission_id} has no camera box {unknown}; boxes: {sorted(boxes)}")
    attached = _photos_of(s, sub.id)
    final = {i: choices.get(i, attached[i].camera_id if i in attached else "new") for i in boxes}
    named = [c for c in final.values() if c != "new"]
    if len(named) != len(set(named)):
        raise RegistryError("two boxes of one photo cannot show the same camera")
    touched: set[str] = set()
    for index, choice in sorted(final.items()):
        old = attached.get(index)
        if old is not None and choice == old.camera_id:
            continue
        cam = new_camera(s, sub, boxes[index], actor) if choice == "new" else _live_camera(s, choice)
        if old is not None:
            touched.add(old.camera_id)
            record(s, actor, "detach", old.camera_id, other=cam.id, submission_id=sub.id,
                   detail={"box_index": index})  # fmt: skip
            old.camera_id = cam.id
            old.attached_at, old.attached_by = utcnow(), actor[:128]
            s.flush()
            record(s, actor, "attach", cam.id, submission_id=sub.id, detail={"box_index": index})
        else:
            _attach(s, cam.id, sub.id, boxes[index], actor)
        touched.add(cam.id)
    for cam_id in touched:
        refresh(s, cam_id)
    return candidates(s, submission_id, labels)


def merge(s: Session, source_id: str, target_id: str, actor: str, note: str = "") -> dict[str, Any]:
    """Move every photo of ``source_id`` to ``target_id``; the source stays as status ``merged``.

    Refused when both cameras show boxes of one photo (those are two cameras by definition).
    """
    if source_id == target_id:
        raise RegistryError("a camera cannot be merged into itself")
    source, target = _live_camera(s, source_id), _live_camera(s, target_id)
    moved = s.scalars(select(CameraPhoto).where(CameraPhoto.camera_id == source.id)).all()
    theirs = set(s.scalars(select(CameraPhoto.submission_id).where(CameraPhoto.camera_id == target.id)).all())
    if shared := sorted({p.submission_id for p in moved} & theirs):
        raise RegistryError(
            f"cameras {source.id} and {target.id} are both in photo {shared[0]}: they are two cameras; "
            "move that photo's box first"
        )
    for photo in moved:
        photo.camera_id = target.id
    s.execute(update(Camera).where(Camera.merged_into == source.id).values(merged_into=target.id))
    source.status, source.merged_into, source.updated_at = "merged", target.id, utcnow()
    s.flush()
    detail = {"photos": [p.id for p in moved], "note": note}
    record(s, actor, "merge", target.id, other=source.id, detail=detail)
    record(s, actor, "merge", source.id, other=target.id, detail=detail)
    refresh(s, target.id)
    return camera_json(s, target.id)


def split(s: Session, camera_id: str, photo_ids: Iterable[int], actor: str, note: str = "") -> dict[str, Any]:
    """Move the given photo entries of a camera to a new camera (at least one stays); the new one."""
    cam = _live_camera(s, camera_id)
    ids = sorted(set(photo_ids))
    photos = s.scalars(select(CameraPhoto).where(CameraPhoto.camera_id == cam.id)).all()
    mine = {p.id: p for p in photos}
    if not ids or (unknown := [i for i in ids if i not in mine]):
        raise InvalidEdit(f"camera {cam.id} has no photo entries {unknown if ids else '(none given)'}; "
                            f"its entries: {sorted(mine)}")  # fmt: skip
    if len(ids) == len(mine):
        raise RegistryError(f"a split leaves at least one photo in {cam.id}; to move them all, merge instead")
    first = mine[ids[0]]
    sub = s.get(Submission, first.submission_id)
    assert sub is not None
    new = new_camera(s, sub, BoxCamera(first.box_index, first.label, first.box), actor)
    new.mount = cam.mount
    for i in ids:
        mine[i].camera_id = new.id
    s.flush()
    record(s, actor, "split", cam.id, other=new.id, detail={"photos": ids, "note": note})
    record(s, actor, "split", new.id, other=cam.id, detail={"photos": ids, "note": note})
    refresh(s, cam.id)
    refresh(s, new.id)
    return camera_json(s, new.id)


def update_camera(
    s: Session, camera_id: str, changes: Mapping[str, Any], labels: LabelSet, actor: str
) -> dict[str, Any]:
    """Set a camera's ``status``, ``mount``, ``label`` or ``note``; audited with the old values."""
    cam = _live_camera(s, camera_id)
    allowed: dict[str, list[Any]] = {
        "status": [c for c in CAMERA_STATUSES if c != "merged"],
        "mount": [*MOUNTS, None],
        "label": list(labels.cameras),
    }
    before: dict[str, Any] = {}
    for key, value in changes.items():
        if key in allowed and value not in allowed[key]:
            raise InvalidEdit(f"{key} {value!r} is not one of {', '.join(str(v) for v in allowed[key])}")
        if key not in (*allowed, "note"):
            raise InvalidEdit(f"a camera has no editable field {key!r}")
        before[key] = getattr(cam, key)
        setattr(cam, key, value)
    cam.updated_at = utcnow()
    record(s, actor, "update", cam.id, detail={"before": before, "after": dict(changes)})
    s.flush()
    return camera_json(s, cam.id)


def _iso(t: Any) -> str | None:
    return None if t is None else t.isoformat().replace("+00:00", "Z")


def camera_json(s: Session, camera_id: str) -> dict[str, Any]:
    """A camera as moderators see it: location with spread, photo entries, its audit trail."""
    cam = s.get(Camera, camera_id)
    if cam is None:
        raise NotFoundError(f"no camera {camera_id!r}")
    rows = s.execute(
        select(CameraPhoto, Submission.status, Submission.created_at, Submission.lat, Submission.lon)
        .join(Submission, Submission.id == CameraPhoto.submission_id)
        .where(CameraPhoto.camera_id == cam.id)
        .order_by(Submission.created_at, CameraPhoto.id)
    ).all()
    events = s.scalars(
        select(CameraEvent).where(CameraEvent.camera_id == cam.id).order_by(CameraEvent.id)
    ).all()
    seen = [r.created_at for r in rows if r.status == "verified"]
    return {
        "id": cam.id,
        "label": cam.label,
        "lat": cam.lat,
        "lon": cam.lon,
        "spread_m": cam.spread_m,
        "radius_m": cam.radius_m,
        "mount": cam.mount,
        "status": cam.status,
        "merged_into": cam.merged_into,
        "note": cam.note,
        "first_seen": _iso(min(seen)) if seen else None,
        "last_seen": _iso(max(seen)) if seen else None,
        "photo_count": len({r.CameraPhoto.submission_id for r in rows if r.status == "verified"}),
        "photos": [
            {
                "id": r.CameraPhoto.id,
                "submission_id": r.CameraPhoto.submission_id,
                "box_index": r.CameraPhoto.box_index,
                "label": r.CameraPhoto.label,
                "box": r.CameraPhoto.box,
                "status": r.status,
                "taken_at": _iso(r.created_at),
                "lat": r.lat,
                "lon": r.lon,
            }
            for r in rows
        ],
        "events": [
            {
                "at": _iso(e.created_at),
                "by": e.actor,
                "action": e.action,
                "other_camera_id": e.other_camera_id,
                "submission_id": e.submission_id,
                "detail": e.detail,
            }
            for e in events
        ],
    }
