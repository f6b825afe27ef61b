"""Synthetic renders: planning is pure and deterministic; rendering (needs Blender) is small and
resumable. Rendering tests skip when Blender is not installed."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data.boxes import iou, parse_boxes
from data.labels import LabelSet, load_labels
from data.manifest import read_manifest, validate_manifest
from data.synth import generate, render
from data.synth.catalogue import load_catalogue
from data.synth.cli import main as synth_main
from data.synth.contact_sheet import contact_sheet, pick_across_classes
from data.synth.devices import HANDHELD_KINDS, builder_names
from data.synth.generate import SynthConfig
from data.synth.params import HDRI_SUNS, class_schedule, hdri_rotation
from data.synth.postprocess import composite, distort_facts, lens_distortion, phone_effects
from data.synth.render import BlenderNotFoundError, find_blender, run_blender_job, write_job

CLASSES = list(load_labels().names)
DEFAULT_MIX = load_catalogue().mix
LOOK_ALIKES = {s.kind for s in load_catalogue().get("no_camera").subjects}
needs_blender = pytest.mark.skipif(
    shutil.which("blender") is None, reason="blender not installed: make blender"
)


def test_schedule_balanced_and_prefix_stable() -> None:
    labels = class_schedule(200, CLASSES, DEFAULT_MIX)
    assert set(labels[:4]) == set(CLASSES)
    assert class_schedule(50, CLASSES, DEFAULT_MIX) == labels[:50]
    for name, share in DEFAULT_MIX.items():
        assert abs(labels.count(name) / 200 - share) <= 0.01


def test_schedule_rejects_class_without_share() -> None:
    with pytest.raises(ValueError, match="no positive weight"):
        class_schedule(4, [*CLASSES, "new_class"], DEFAULT_MIX)


def test_plans_and_job_json_are_deterministic(tmp_path: Path) -> None:
    a = generate.plan_set(12, seed=5, size=64, samples=8)
    b = generate.plan_set(12, seed=5, size=64, samples=8)
    c = generate.plan_set(12, seed=6, size=64, samples=8)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert json.dumps(a, sort_keys=True) != json.dumps(c, sort_keys=True)
    raws = [tmp_path / f"{i}.png" for i in range(12)]
    j1 = write_job(
        tmp_path / "a.json", a, raws, size=64, samples=8, threads=None, builders=builder_names()
    ).read_bytes()
    j2 = write_job(
        tmp_path / "b.json", b, raws, size=64, samples=8, threads=None, builders=builder_names()
    ).read_bytes()
    assert j1 == j2
    # an image's plan depends on (seed, index) only, not on how many images are asked for
    assert json.dumps(generate.plan_set(3, seed=5, size=64, samples=8), sort_keys=True) == json.dumps(
        a[:3], sort_keys=True
    )


def test_plans_cover_requested_classes_and_groups() -> None:
    plans = generate.plan_set(6, seed=1, size=64, samples=8, classes=["other_camera", "no_camera"])
    assert {p["label"] for p in plans} == {"other_camera", "no_camera"}
    assert len({p["group"] for p in plans}) == 6
    with pytest.raises(ValueError, match="unknown classes"):
        generate.plan_set(2, seed=1, classes=["dog"])


def test_phone_effects_deterministic() -> None:
    img = Image.fromarray(np.full((32, 32, 3), 120, np.uint8))
    post = generate.plan_set(1, seed=2, size=32, samples=1)[0]["post"]
    assert np.array_equal(np.asarray(phone_effects(img, post)), np.asarray(phone_effects(img, post)))


def test_post_processing_keeps_the_frame_size_so_boxes_stay_valid() -> None:
    post = generate.plan_set(1, seed=2, size=32, samples=1)[0]["post"]
    render_rgba = Image.new("RGBA", (48, 48), (200, 200, 200, 0))
    background = Image.new("RGB", (120, 70), (20, 90, 160))
    assert composite(render_rgba, background).size == (48, 48)
    assert phone_effects(render_rgba.convert("RGB"), {**post, "motion_px": 3.0}).size == (48, 48)


def test_far_framing_puts_small_cameras_in_a_phone_frame_and_leaves_near_sets_alone() -> None:
    near = generate.plan_set(40, seed=9, size=64, samples=1)
    assert generate.plan_set(40, seed=9, size=64, samples=1, framing="near") == near
    far = generate.plan_set(40, seed=9, size=160, height=120, samples=1, framing="far")
    widths = [math.sqrt(p["view"]["fill"]) for p in far]  # linear share of the frame width
    assert all(0.012 <= w <= 0.07 for w in widths) and all(p["height"] == 120 for p in far)
    mixed = generate.plan_set(40, seed=9, size=64, samples=1, framing="mixed")
    n_far = sum(math.sqrt(p["view"]["fill"]) < 0.1 for p in mixed)
    assert 10 <= n_far <= 30  # about half
    with pytest.raises(ValueError, match="framing"):
        SynthConfig(1, framing="zoomed")


def test_cutout_plans_are_poles_with_the_same_draws_and_nothing_around_them() -> None:
    plain = generate.plan_set(40, seed=9, size=64, samples=4)
    cut = generate.plan_set(40, seed=9, size=64, samples=4, cutouts=True)
    assert {p["mount"]["kind"] for p in cut} <= {"pole", "tripod"}  # a facade would paste a wall
    assert any(p["mount"]["kind"] == "wall" for p in plain)
    same = [(a, b) for a, b in zip(plain, cut, strict=True) if a["mount"]["kind"] != "wall"]
    assert same
    for a, b in same:  # only the film, the occluders and the file type change
        assert b["transparent"] and b["cutout"] and b["occluders"] == [] and b["image"].endswith(".png")
        assert {k: v for k, v in a.items() if k not in ("occluders", "image")} == {
            k: v for k, v in b.items() if k not in ("occluders", "image", "transparent", "cutout")
        }
    with pytest.raises(ValueError, match="backgrounds"):
        SynthConfig(2, cutouts=True, backgrounds="street.csv")


def test_composite_crops_the_background_to_the_render_aspect() -> None:
    render_rgba = Image.new("RGBA", (80, 60), (0, 0, 0, 0))
    background = Image.new("RGB", (300, 100), (20, 90, 160))
    background.paste((250, 0, 0), (0, 0, 40, 100))  # a red strip at the far left is cropped away
    out = composite(render_rgba, background)
    assert out.size == (80, 60) and out.getpixel((0, 30))[0] < 100


def test_synth_boxes_label_devices_and_drop_slivers() -> None:
    plan = generate.plan_set(1, seed=2, size=64, samples=1, classes=["huawei_ipc6625_z30"])[0]
    plan["devices"] = [
        plan["devices"][0],
        {"kind": "street_light"},
        {"kind": "huawei_bullet"},
        {"kind": "box"},
    ]
    facts = {
        "boxes": [
            {"device": 0, "kind": "huawei_ptz", "box": [10, 12, 30, 40], "visible": 1.0},
            {"device": 1, "kind": "street_light", "box": [0, 0, 20, 6], "visible": 0.5},
            {"device": 2, "kind": "huawei_bullet", "box": [60, 10, 64, 20], "visible": 0.2},  # sliver
            {"device": 2, "kind": "huawei_bullet", "box": [40, 10, 41.5, 20], "visible": 1.0},  # 1.5 px
            {"device": None, "kind": "street_light", "box": [50, 50, 60, 55], "visible": 1.0},
            {"device": 3, "kind": "box", "box": [2, 50, 12, 60], "visible": 1.0},
        ]
    }
    boxes = generate.synth_boxes(plan, facts, load_catalogue(), load_labels())
    assert [(b.label, b.kind, b.box) for b in boxes] == [
        ("huawei_ipc6625_z30", "huawei_ptz", (10, 12, 30, 40)),
        ("no_camera", "street_light", (0, 0, 20, 6)),
        ("no_camera", "street_light", (50, 50, 60, 55)),
        ("other_camera", "box", (2, 50, 12, 60)),
    ]
    record = generate.plan_record(plan, boxes)
    assert parse_boxes(record.extra["boxes"]) == boxes
    # labels without other_camera: a box camera has no class there, so it gets no box
    no_other = LabelSet(tuple(c for c in load_labels() if c.name != "other_camera"))
    assert [b.kind for b in generate.synth_boxes(plan, facts, load_catalogue(), no_other)] == [
        "huawei_ptz",
        "street_light",
        "street_light",
    ]


def test_missing_blender_gives_install_hint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CAMID_BLENDER", raising=False)
    with pytest.raises(BlenderNotFoundError, match="apt-get install -y blender"):
        find_blender("no-such-blender-xyz")
    code = synth_main(
        ["--out", str(tmp_path / "s"), "--n", "1", "--blender", "no-such-blender-xyz", "--quiet"]
    )
    assert code == 2


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*.jpg"))}


def _assert_same_pictures(a: Path, b: Path) -> None:
    """``b``'s JPEGs show the same pictures as ``a``'s of the same names. Cycles on several threads
    may round a pixel of the raw render differently from run to run (one level in one pixel was
    seen), and the phone optics spread that over a few pixels of the JPEG: a few levels at most,
    never a different scene."""
    first = {p.name: p for p in a.rglob("*.jpg")}
    for path in sorted(b.rglob("*.jpg")):
        with Image.open(first[path.name]) as x, Image.open(path) as y:
            diff = np.abs(np.asarray(x, dtype=np.int16) - np.asarray(y, dtype=np.int16))
        assert diff.max() <= 8 and diff.mean() < 0.5, f"{path.name}: {diff.max()=} {diff.mean()=}"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six tiny renders (64 px, 8 samples) made once for the rendering tests."""
    if shutil.which("blender") is None:
        pytest.skip("blender not installed: make blender")
    out = tmp_path_factory.mktemp("synth")
    generate.synthesize(out, SynthConfig(6, seed=3, size=64, samples=8, chunk=6, progress=False))
    return out


@needs_blender
def test_render_writes_valid_manifest_with_all_classes(rendered: Path) -> None:
    manifest = rendered / generate.MANIFEST_NAME
    assert validate_manifest(manifest, load_labels()) == []
    records = read_manifest(manifest).records
    assert {r.label for r in records} == set(CLASSES)
    assert all(r.source == "camid-synth" and r.license == "CC0-1.0" for r in records)
    assert all(r.extra["form_factor"] for r in records)
    with Image.open(rendered / records[0].path) as im:
        assert im.size == (64, 64) and im.format == "JPEG"
    assert not (rendered / "_work").exists()


@needs_blender
def test_renders_record_every_device_box_inside_the_frame(rendered: Path) -> None:
    records = read_manifest(rendered / generate.MANIFEST_NAME).records
    catalogue = load_catalogue()
    for r in records:
        boxes = parse_boxes(r.extra["boxes"])
        assert all(0 <= b.box[0] < b.box[2] <= 64 and 0 <= b.box[1] < b.box[3] <= 64 for b in boxes)
        # the framed subject is boxed with the image's label
        assert any(b.kind == r.extra["subject"] and b.label == r.label for b in boxes), r.path
        for b in boxes:
            if b.kind in LOOK_ALIKES:
                assert b.label == "no_camera"  # a hard negative for detectors
            else:
                assert b.label == catalogue.class_of_kind(b.kind, load_labels(), r.label)
    assert sum(len(parse_boxes(r.extra["boxes"])) for r in records) > len(records)  # companions too


@needs_blender
def test_resume_renders_nothing_new(rendered: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []
    monkeypatch.setattr(generate, "run_blender_job", lambda job, *a, **k: calls.append(job))
    before = _digest(rendered)
    boxes = [r.extra["boxes"] for r in read_manifest(rendered / generate.MANIFEST_NAME).records]
    (rendered / generate.MANIFEST_NAME).unlink()
    generate.synthesize(rendered, SynthConfig(6, seed=3, size=64, samples=8, chunk=6, progress=False))
    assert calls == [] and _digest(rendered) == before
    # the manifest of images rendered by an earlier run still has their boxes
    assert [r.extra["boxes"] for r in read_manifest(rendered / generate.MANIFEST_NAME).records] == boxes


@needs_blender
def test_a_jpeg_without_its_boxes_is_rendered_again(rendered: Path, tmp_path: Path) -> None:
    out = tmp_path / "copy"
    shutil.copytree(rendered, out)
    victim = sorted(out.rglob("synth-*.json"))[0]
    victim.unlink()
    before = _digest(out)
    generate.synthesize(out, SynthConfig(6, seed=3, size=64, samples=8, chunk=6, progress=False))
    again = victim.with_suffix(".jpg").name
    assert victim.is_file() and {k: v for k, v in _digest(out).items() if k != again} == {
        k: v for k, v in before.items() if k != again
    }  # nothing else was touched
    _assert_same_pictures(rendered, out)  # the same picture, now with its facts
    assert (
        read_manifest(out / generate.MANIFEST_NAME).records
        == read_manifest(rendered / generate.MANIFEST_NAME).records
    )


@needs_blender
def test_resume_refuses_other_settings(rendered: Path) -> None:
    with pytest.raises(ValueError, match="other settings"):
        generate.synthesize(rendered, SynthConfig(6, seed=3, size=96, samples=8, progress=False))


@needs_blender
def test_same_seed_same_pixels(rendered: Path, tmp_path: Path) -> None:
    # Cycles on CPU with a fixed seed and the same thread count renders the same pictures
    generate.synthesize(tmp_path, SynthConfig(2, seed=3, size=64, samples=8, chunk=2, progress=False))
    assert len(_digest(tmp_path)) == 2
    _assert_same_pictures(rendered, tmp_path)


@needs_blender
def test_cutouts_are_transparent_pngs_of_the_installation_with_its_boxes(tmp_path: Path) -> None:
    config = SynthConfig(4, seed=3, size=64, samples=4, chunk=4, cutouts=True, progress=False)
    records = read_manifest(generate.synthesize(tmp_path, config)).records
    assert len(records) == 4
    for r in records:
        with Image.open(tmp_path / r.path) as im:
            assert im.format == "PNG" and im.mode == "RGBA" and im.size == (64, 64)
            alpha = np.asarray(im)[..., 3]
        assert (alpha == 0).mean() > 0.5, "no street, no sky: the film is transparent around the pole"
        boxes = parse_boxes(r.extra["boxes"])
        assert any(b.label == r.label for b in boxes)
        for b in boxes:  # each box holds some of the rendered object
            x0, y0, x1, y1 = (round(v) for v in b.box)
            assert alpha[y0:y1, x0:x1].max() > 128


def _alpha_box(png: Path) -> tuple[float, float, float, float]:
    alpha = np.asarray(Image.open(png))[..., 3] >= 128
    ys, xs = np.nonzero(alpha)
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


@needs_blender
def test_subject_box_matches_the_rendered_silhouette(tmp_path: Path) -> None:
    # devices alone on an invisible pole, transparent film: the alpha mask is the device
    # a phone-shaped 4:3 frame: boxes are measured in the frame's own width and height
    plans = generate.plan_set(
        3, seed=4, size=96, height=72, samples=2, classes=["huawei_ipc6625_z30", "other_camera"]
    )
    for plan, shift in zip(plans, (0.0, 0.0, 1.0), strict=True):
        plan["devices"] = plan["devices"][:1]
        plan["mount"] = {"kind": "pole", "radius": 0.001, "height": 0.01, "crossarm": 0.0, "bands": []}
        plan["occluders"] = []
        plan["transparent"] = True
        plan["view"].update(fill=0.2, shift_x=shift, shift_y=0.0)  # the third one runs off the right edge
    raws = [tmp_path / f"raw-{i}.png" for i in range(3)]
    job = write_job(
        tmp_path / "job.json", plans, raws, size=96, height=72, samples=2, threads=2, builders=builder_names()
    )
    run_blender_job(job, find_blender())
    for raw in raws:
        facts = render.read_facts(raw)
        (subject,) = facts["boxes"]
        assert subject["device"] == 0 and (facts["width"], facts["height"]) == (96, 72)
        assert iou(subject["box"], _alpha_box(raw)) > 0.8, (raw, subject, _alpha_box(raw))
    edge = render.read_facts(raws[2])["boxes"][0]
    assert edge["box"][2] == 96 and edge["visible"] < 1.0


@needs_blender
def test_contact_sheet(rendered: Path, tmp_path: Path) -> None:
    out = contact_sheet(rendered / generate.MANIFEST_NAME, tmp_path / "sheet.png", n=6, tile=48, cols=3)
    with Image.open(out) as im:
        assert im.size[0] == 3 * 48 and im.size[1] > 2 * 48


def test_pick_across_classes_round_robin() -> None:
    assert pick_across_classes(["a", "a", "b", "c", "a"], 4) == [0, 2, 3, 1]


def test_render_module_has_no_camid_imports() -> None:
    text = render.SCENE_SCRIPT.read_text(encoding="utf-8")
    assert "import data" not in text and "from data" not in text


def test_backgrounds_from_folder_take_licences_from_parent_manifest(tmp_path: Path) -> None:
    photos = tmp_path / "real" / "street"
    photos.mkdir(parents=True)
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        Image.new("RGB", (40, 30), (90, 100, 110)).save(photos / name)
    (tmp_path / "real" / "manifest.csv").write_text(
        "path,label,group,source,license,lat,lon\n"
        "street/a.jpg,no_camera,a,wikimedia,CC-BY-SA 4.0 X,,\n"
        "street/b.jpg,no_camera,b,wikimedia,CC0,,\n"
        "street/c.jpg,other_camera,c,wikimedia,CC0,,\n",
        encoding="utf-8",
    )
    bgs = generate.load_backgrounds(photos)
    assert [b.license for b in bgs] == ["CC-BY-SA 4.0 X", "CC0"]
    plans = generate.plan_set(40, seed=9, size=64, samples=4, backgrounds=bgs, background_share=1.0)
    composited = [p for p in plans if p.get("background")]
    assert composited and all(p["mount"]["kind"] == "pole" and p["transparent"] for p in composited)
    rec = generate.plan_record(composited[0])
    assert "CC0-1.0" in rec.license and composited[0]["background_license"] in rec.license
    with pytest.raises(FileNotFoundError, match="no such folder"):
        generate.load_backgrounds(tmp_path / "missing")


def test_bad_arguments_exit_2(tmp_path: Path) -> None:
    assert synth_main(["--out", str(tmp_path), "--n", "0", "--quiet"]) == 2
    assert synth_main(["--out", str(tmp_path), "--n", "2", "--classes", "dog", "--quiet"]) == 2


def test_lens_distortion_moves_each_box_with_its_pixels() -> None:
    h, w = 120, 160
    frame = np.zeros((h, w, 3), np.float32)
    box = [118.0, 12.0, 150.0, 40.0]  # near a corner, where barrel distortion moves things most
    frame[12:40, 118:150] = 255.0
    facts = {"width": w, "height": h, "boxes": [{"device": 0, "kind": "huawei_ptz", "box": box}]}
    for k in (0.05, -0.01):
        warped = lens_distortion(frame, k, 0.0)
        ys, xs = np.nonzero(warped[..., 1] > 127)
        seen = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        moved = distort_facts(facts, {"distortion": k})["boxes"][0]["box"]
        assert max(abs(a - b) for a, b in zip(moved, seen, strict=True)) <= 1.0, (k, moved, seen)
    assert distort_facts(facts, {"distortion": 0.0}) == facts


def test_handheld_look_alikes_stand_on_a_tripod_at_eye_height() -> None:
    plans = generate.plan_set(80, seed=3, size=64, samples=1, classes=["no_camera"])
    handheld = [p for p in plans if p["subject_kind"] in HANDHELD_KINDS]
    assert len(handheld) >= 8  # a hard negative that real photos are full of
    for p in handheld:
        assert p["mount"]["kind"] == "tripod" and len(p["devices"]) == 1
        assert 1.1 <= p["devices"][0]["z"] <= 1.75 and p["view"]["dist"] <= 6.0
    assert all(p["mount"]["kind"] in ("pole", "wall") for p in plans if p not in handheld)


def test_most_renders_are_lit_by_a_real_hdr_photo() -> None:
    plans = generate.plan_set(60, seed=5, size=64, samples=1)
    lit = [p for p in plans if p["light"].get("hdri")]
    assert 0.45 <= len(lit) / len(plans) <= 0.85
    for p in lit:
        assert p["light"]["hdri"]["name"] in HDRI_SUNS
        assert p["light"]["sun_elev"] <= HDRI_SUNS[p["light"]["hdri"]["name"]][1]  # the map's own sun


SUN_CHECK = """
import json, math, sys
sys.path.insert(0, {folder!r})
import bpy
from mathutils import Euler
import blender_scene as bs
bs.reset_scene()
hdri = {{"name": "sunrise", "rotation": {rotation}, "strength": 1.0, "clamp": 1e6}}
bs.build_world({{"sky": "day", "hdri": hdri}})
cam = bpy.data.objects.new("c", bpy.data.cameras.new("c"))
bpy.context.scene.collection.objects.link(cam)
cam.data.lens, cam.data.sensor_width = 30, 36
el, az = math.radians({elev}), math.radians({az})
cam.rotation_euler = Euler((math.pi / 2 + el, 0, az - math.pi / 2), "XYZ")  # looking at the sun lamp
sc = bpy.context.scene
sc.camera = cam
sc.render.engine, sc.cycles.samples, sc.cycles.use_denoising = "CYCLES", 1, False
sc.render.resolution_x = sc.render.resolution_y = 33
sc.render.filepath = {out!r}
bpy.ops.render.render(write_still=True)
"""


@needs_blender
def test_the_hdr_maps_sun_is_where_the_sun_lamp_shines_from(tmp_path: Path) -> None:
    elev = HDRI_SUNS["sunrise"][1]
    folder = str(Path(generate.__file__).parent)
    for sun_az in (40.0, 250.0):
        out, script = tmp_path / f"sun-{sun_az:.0f}.png", tmp_path / "check.py"
        rotation = hdri_rotation("sunrise", sun_az)
        script.write_text(
            SUN_CHECK.format(folder=folder, rotation=rotation, elev=elev, az=sun_az, out=str(out)),
            encoding="utf-8",
        )
        subprocess.run(
            [find_blender(), "-b", "--factory-startup", "-P", str(script)], check=True, capture_output=True
        )
        lum = np.asarray(Image.open(out).convert("L"), np.float32)
        y, x = np.unravel_index(int(lum.argmax()), lum.shape)
        assert abs(x - 16) <= 3 and abs(y - 16) <= 3, (sun_az, x, y)  # the sun in the middle


def test_blind_sheet_shuffles_renders_and_real_photos_and_keeps_the_key_apart(tmp_path: Path) -> None:
    from data.manifest import Manifest, Record, write_manifest
    from data.synth.contact_sheet import blind_sheet

    def manifest(name: str, n: int, colour: tuple[int, int, int]) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        records = []
        for i in range(n):
            Image.new("RGB", (90, 60), colour).save(folder / f"{i}.jpg")
            records.append(Record(f"{i}.jpg", "no_camera", f"{name}-{i}", name, "CC0-1.0", None, None))
        return write_manifest(Manifest(folder, records), folder / "manifest.csv")

    key = blind_sheet(manifest("renders", 6, (200, 0, 0)), manifest("real", 5, (0, 0, 200)),
                      tmp_path / "sheet.png", n_renders=6, n_real=2, tile=32, cols=4)  # fmt: skip
    assert [k["kind"] for k in key].count("real") == 2 and len(key) == 8
    assert json.loads((tmp_path / "sheet.key.json").read_text()) == key
    sheet = np.asarray(Image.open(tmp_path / "sheet.png").convert("RGB"))
    for k in key:  # the tile numbered k shows the photo the key says
        i = int(k["tile"]) - 1
        pixel = sheet[(i // 4) * 48 + 16, (i % 4) * 32 + 16]
        assert (pixel[2] > pixel[0]) == (k["kind"] == "real")


def test_blind_sheet_draws_real_photos_from_the_named_folders_only(tmp_path: Path) -> None:
    """``--real-from street/``: the real tiles are street photos, never the close-ups beside them;
    too few photos there is a clear error, not a smaller sheet."""
    from data.manifest import Manifest, Record, write_manifest
    from data.synth.contact_sheet import main

    for name in ("renders", "real/street", "real/handheld"):
        (tmp_path / name).mkdir(parents=True)
    renders = [Record(f"{i}.jpg", "no_camera", f"r{i}", "synth", "CC0-1.0", None, None) for i in range(4)]
    for r in renders:
        Image.new("RGB", (40, 40), (200, 0, 0)).save(tmp_path / "renders" / r.path)
    write_manifest(Manifest(tmp_path / "renders", renders), tmp_path / "renders" / "manifest.csv")
    real = []
    for folder, n in (("street", 3), ("handheld", 9)):
        for i in range(n):
            Image.new("RGB", (40, 40), (0, 0, 200)).save(tmp_path / "real" / folder / f"{i}.jpg")
            real.append(
                Record(f"{folder}/{i}.jpg", "no_camera", f"{folder}{i}", folder, "CC0-1.0", None, None)
            )
    write_manifest(Manifest(tmp_path / "real", real), tmp_path / "real" / "manifest.csv")
    renders_csv, real_csv = tmp_path / "renders" / "manifest.csv", tmp_path / "real" / "manifest.csv"
    args = ["--renders", str(renders_csv), "--real", str(real_csv), "--out", str(tmp_path / "sheet.png"),
            "--n-renders", "4"]  # fmt: skip
    assert main([*args, "--n-real", "3", "--real-from", "street"]) == 0
    key = json.loads((tmp_path / "sheet.key.json").read_text())
    assert sorted(k["path"] for k in key if k["kind"] == "real") == [
        "street/0.jpg",
        "street/1.jpg",
        "street/2.jpg",
    ]
    assert main([*args, "--n-real", "4", "--real-from", "street"]) == 2
