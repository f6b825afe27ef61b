"""Blender scene script for camid's synthetic street photos (runs inside Blender, not camid).

Usage (headless, one process renders many images)::

    blender -b --factory-startup -noaudio --python-exit-code 1 \
        -P data/synth/blender_scene.py -- job.json

``job.json`` holds ``{"render": {...}, "builders": {kind: function name}, "images": [{...}, ...]}``
(``builders`` comes from ``data/synth/devices.py``'s DEVICE_KINDS). Before rendering an image the
script writes its facts (framing and the pixel box of every device in view) to the image's
``facts`` path, and all facts to ``<job>.done.json`` at the end. Every random choice was made by
the orchestrator (``data/synth/params.py``), so this script is deterministic given the job. It
only needs Blender's bundled ``bpy`` and the standard library: it must not import camid.

Coordinates: metres, Z up. A device is built in its own frame with its mount point at the
origin, pointing away from the mount along +X, then placed on a pole or wall.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from typing import Any

import bpy  # type: ignore[import-not-found]
from bpy_extras.object_utils import world_to_camera_view  # type: ignore[import-not-found]
from mathutils import Euler, Vector  # type: ignore[import-not-found]

P = dict[str, Any]


# --------------------------------------------------------------------------------------------
# scene reset and primitives
# --------------------------------------------------------------------------------------------


def reset_scene() -> None:
    """Remove every object and data block left by the previous image."""
    for ob in list(bpy.data.objects):
        bpy.data.objects.remove(ob, do_unlink=True)
    for coll in (
        bpy.data.meshes,
        bpy.data.materials,
        bpy.data.lights,
        bpy.data.cameras,
        bpy.data.curves,
        bpy.data.worlds,
        bpy.data.node_groups,
        bpy.data.images,
        bpy.data.textures,
    ):
        for block in list(coll):
            coll.remove(block)


class Mats:
    """Material cache for one scene: ``mats.get(key)`` builds on first use."""

    def __init__(self, spec: P) -> None:
        self.spec = spec
        self.cache: dict[str, Any] = {}

    def get(self, key: str) -> Any:
        if key not in self.cache:
            self.cache[key] = build_material(key, self.spec.get(key, {}))
        return self.cache[key]


def principled(name: str) -> tuple[Any, Any, Any]:
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    nt = mat.node_tree
    bsdf = nt.nodes["Principled BSDF"]
    return mat, nt, bsdf


def build_material(key: str, s: P) -> Any:
    """Build a named material from a small spec (colour, roughness, metal, kind)."""
    mat, nt, bsdf = principled(key)
    col = s.get("color", (0.8, 0.8, 0.8))
    bsdf.inputs["Base Color"].default_value = (*col, 1.0)
    bsdf.inputs["Roughness"].default_value = s.get("rough", 0.4)
    bsdf.inputs["Metallic"].default_value = s.get("metal", 0.0)
    bsdf.inputs["Specular"].default_value = s.get("spec", 0.5)
    bsdf.inputs["Clearcoat"].default_value = s.get("coat", 0.0)
    kind = s.get("kind", "plain")
    if kind == "emit":
        bsdf.inputs["Emission"].default_value = (*s.get("emit", col), 1.0)
        bsdf.inputs["Emission Strength"].default_value = s.get("strength", 5.0)
    elif kind in ("grime", "facade", "leaves", "asphalt"):
        add_texture(nt, bsdf, kind, s)
    return mat


def add_texture(nt: Any, bsdf: Any, kind: str, s: P) -> None:
    """Procedural detail: grime on plastic, windows on facades, holes in foliage, asphalt."""
    coord = nt.nodes.new("ShaderNodeTexCoord")
    if kind == "facade":
        facade_texture(nt, bsdf, coord, s)
        return
    if kind == "asphalt":
        asphalt_texture(nt, bsdf, coord, s)
        return
    noise = nt.nodes.new("ShaderNodeTexNoise")
    noise.inputs["Scale"].default_value = s.get("noise_scale", 6.0)
    noise.inputs["Detail"].default_value = 2.0
    if s.get("streaks"):  # rain runs down: the pattern stretched along the vertical
        stretch = nt.nodes.new("ShaderNodeMapping")
        stretch.inputs["Scale"].default_value = (1.0, 1.0, s["streaks"])
        nt.links.new(coord.outputs["Object"], stretch.inputs["Vector"])
        nt.links.new(stretch.outputs["Vector"], noise.inputs["Vector"])
    else:
        nt.links.new(coord.outputs["Object"], noise.inputs["Vector"])
    if kind == "leaves":
        leaves_texture(nt, bsdf, coord, noise, s)
    else:
        grime_texture(nt, bsdf, noise, s)


def op(nt: Any, operation: str, a: Any, b: Any = None, c: Any = None) -> Any:
    """A shader Math node on sockets or numbers; returns its output socket."""
    node = nt.nodes.new("ShaderNodeMath")
    node.operation = operation
    for i, v in enumerate((a, b, c)):
        if v is None:
            continue
        if isinstance(v, (int, float)):
            node.inputs[i].default_value = float(v)
        else:
            nt.links.new(v, node.inputs[i])
    return node.outputs[0]


def band(nt: Any, x: Any, lo: float, hi: float) -> Any:
    """1 where ``lo < x < hi``, else 0."""
    return op(nt, "MULTIPLY", op(nt, "GREATER_THAN", x, lo), op(nt, "LESS_THAN", x, hi))


def mix_colour(nt: Any, fac: Any, c1: Any, c2: Any) -> Any:
    """``c1`` where ``fac`` is 0, ``c2`` where it is 1 (colours as sockets or RGB tuples)."""
    node = nt.nodes.new("ShaderNodeMixRGB")
    for sock, v in ((node.inputs["Fac"], fac), (node.inputs["Color1"], c1), (node.inputs["Color2"], c2)):
        if isinstance(v, (int, float)):
            sock.default_value = float(v)
        elif isinstance(v, (tuple, list)):
            sock.default_value = (*v, 1.0)
        else:
            nt.links.new(v, sock)
    return node.outputs["Color"]


def shaded(nt: Any, colour: Any, tone: Any) -> Any:
    """``colour`` (RGB) times a brightness ``tone`` socket; returns the colour socket."""
    grey = nt.nodes.new("ShaderNodeCombineRGB")
    for c in "RGB":
        nt.links.new(tone, grey.inputs[c])
    mul = nt.nodes.new("ShaderNodeMixRGB")
    mul.blend_type = "MULTIPLY"
    mul.inputs["Fac"].default_value = 1.0
    mul.inputs["Color1"].default_value = (*colour, 1.0)
    nt.links.new(grey.outputs["Image"], mul.inputs["Color2"])
    return mul.outputs["Color"]


def noise_at(nt: Any, vector: Any, scale: float, detail: float = 4.0) -> Any:
    tex = nt.nodes.new("ShaderNodeTexNoise")
    tex.inputs["Scale"].default_value = scale
    tex.inputs["Detail"].default_value = detail
    nt.links.new(vector, tex.inputs["Vector"])
    return tex.outputs["Fac"]


def facade_texture(nt: Any, bsdf: Any, coord: Any, s: P) -> None:
    """Plaster with stains and rain runs, and a grid of framed windows with sills; each pane
    reflects the sky, some have a curtain behind, and at night some are lit."""
    cols, rows, _ = s["scale"]
    mx, mb, mt = s.get("margins", (0.27, 0.3, 0.15))
    fw = s.get("frame_w", 0.03)
    grid = nt.nodes.new("ShaderNodeMapping")
    grid.inputs["Scale"].default_value = (cols, rows, 1.0)
    nt.links.new(coord.outputs["UV"], grid.inputs["Vector"])
    xyz = nt.nodes.new("ShaderNodeSeparateXYZ")
    nt.links.new(grid.outputs["Vector"], xyz.inputs["Vector"])
    x, y = xyz.outputs["X"], xyz.outputs["Y"]
    fx, fy = op(nt, "FRACT", x), op(nt, "FRACT", y)
    window = op(nt, "MULTIPLY", band(nt, fx, mx, 1 - mx), band(nt, fy, mb, 1 - mt))
    pane = op(nt, "MULTIPLY", band(nt, fx, mx + fw, 1 - mx - fw), band(nt, fy, mb + fw, 1 - mt - fw))
    sill = op(nt, "MULTIPLY", band(nt, fx, mx - 0.04, 1 - mx + 0.04), band(nt, fy, mb - 0.05, mb))
    cell = nt.nodes.new("ShaderNodeCombineXYZ")
    nt.links.new(op(nt, "FLOOR", x), cell.inputs["X"])
    nt.links.new(op(nt, "FLOOR", y), cell.inputs["Y"])
    rand = nt.nodes.new("ShaderNodeTexWhiteNoise")
    rand.noise_dimensions = "3D"
    nt.links.new(cell.outputs["Vector"], rand.inputs["Vector"])
    curtain = op(nt, "LESS_THAN", rand.outputs["Value"], s.get("curtains", 0.3))
    # plaster: broad colour patches and vertical rain runs in metres
    metres = nt.nodes.new("ShaderNodeMapping")
    w_m, h_m = s.get("size_m", (cols * 3.0, rows * 3.0))
    metres.inputs["Scale"].default_value = (w_m, h_m, 1.0)
    nt.links.new(coord.outputs["UV"], metres.inputs["Vector"])
    runs = nt.nodes.new("ShaderNodeMapping")
    runs.inputs["Scale"].default_value = (1.5, 0.12, 1.0)
    nt.links.new(metres.outputs["Vector"], runs.inputs["Vector"])
    patches = noise_at(nt, metres.outputs["Vector"], 0.35, 2.0)
    runs_fac = noise_at(nt, runs.outputs["Vector"], 2.0, 2.0)
    stain = op(
        nt, "MULTIPLY", op(nt, "MAXIMUM", op(nt, "SUBTRACT", runs_fac, 0.55), 0.0), 4.0 * s.get("stains", 0.2)
    )
    wall = shaded(nt, s["color"], op(nt, "SUBTRACT", op(nt, "MULTIPLY_ADD", patches, 0.2, 0.9), stain))
    glass = mix_colour(
        nt, op(nt, "MULTIPLY", rand.outputs["Value"], 0.8), s["window"], [c * 2.0 for c in s["window"]]
    )
    glass = mix_colour(
        nt, curtain, glass, mix_colour(nt, rand.outputs["Value"], (0.05, 0.045, 0.04), (0.4, 0.36, 0.3))
    )
    colour = mix_colour(nt, sill, wall, (0.55, 0.55, 0.53))
    colour = mix_colour(nt, window, colour, s.get("frame", (0.7, 0.7, 0.7)))
    colour = mix_colour(nt, pane, colour, glass)
    nt.links.new(colour, bsdf.inputs["Base Color"])
    # glass is glossy (it mirrors the sky and the street), plaster and curtains are matte
    rough = op(nt, "MULTIPLY_ADD", op(nt, "MULTIPLY", pane, op(nt, "SUBTRACT", 1.0, curtain)), -0.8, 0.85)
    nt.links.new(rough, bsdf.inputs["Roughness"])
    bump = nt.nodes.new("ShaderNodeBump")
    bump.inputs["Strength"].default_value = 0.08
    nt.links.new(
        op(nt, "MULTIPLY", noise_at(nt, metres.outputs["Vector"], 6.0, 3.0), op(nt, "SUBTRACT", 1.0, window)),
        bump.inputs["Height"],
    )
    nt.links.new(bump.outputs["Normal"], bsdf.inputs["Normal"])
    if s.get("lit", 0.0) > 0:
        glow = op(nt, "MULTIPLY", pane, op(nt, "GREATER_THAN", rand.outputs["Value"], 0.55))
        emit = mix_colour(nt, glow, (0.0, 0.0, 0.0), (1.0, 0.75, 0.45))
        nt.links.new(emit, bsdf.inputs["Emission"])
        bsdf.inputs["Emission Strength"].default_value = s["lit"]


def leaves_texture(nt: Any, bsdf: Any, coord: Any, noise: Any, s: P) -> None:
    """Leaf clumps: noise cut-out holes (more towards the silhouette) and a mottled tint."""
    nodes, links = nt.nodes, nt.links
    col = s.get("color", (0.8, 0.8, 0.8))
    ramp = nodes.new("ShaderNodeValToRGB")
    facing = nodes.new("ShaderNodeLayerWeight")
    facing.inputs["Blend"].default_value = 0.3
    edge = nodes.new("ShaderNodeMath")
    edge.operation = "MULTIPLY_ADD"
    edge.inputs[1].default_value = -0.35
    links.new(facing.outputs["Facing"], edge.inputs[0])
    links.new(noise.outputs["Fac"], edge.inputs[2])
    links.new(edge.outputs["Value"], ramp.inputs["Fac"])
    ramp.color_ramp.elements[0].position = s.get("holes", 0.5)
    ramp.color_ramp.elements[1].position = s.get("holes", 0.5) + 0.02
    tint = nodes.new("ShaderNodeTexNoise")
    tint.inputs["Scale"].default_value = 3.0
    links.new(coord.outputs["Object"], tint.inputs["Vector"])
    shade = nodes.new("ShaderNodeMixRGB")
    shade.blend_type = "MULTIPLY"
    shade.inputs["Color1"].default_value = (*col, 1.0)
    links.new(tint.outputs["Color"], shade.inputs["Color2"])
    shade.inputs["Fac"].default_value = 0.6
    links.new(shade.outputs["Color"], bsdf.inputs["Base Color"])
    transp = nodes.new("ShaderNodeBsdfTransparent")
    mix = nodes.new("ShaderNodeMixShader")
    # shadow rays see the clump solid: its fine holes would cast a speckled shade (sampling noise)
    path = nodes.new("ShaderNodeLightPath")
    solid = nodes.new("ShaderNodeMixRGB")
    solid.inputs["Color2"].default_value = (1.0, 1.0, 1.0, 1.0)
    links.new(path.outputs["Is Shadow Ray"], solid.inputs["Fac"])
    links.new(ramp.outputs["Color"], solid.inputs["Color1"])
    links.new(solid.outputs["Color"], mix.inputs["Fac"])
    links.new(transp.outputs["BSDF"], mix.inputs[1])
    links.new(bsdf.outputs["BSDF"], mix.inputs[2])
    links.new(mix.outputs["Shader"], nt.nodes["Material Output"].inputs["Surface"])
    bsdf.inputs["Subsurface"].default_value = 0.0


def asphalt_texture(nt: Any, bsdf: Any, coord: Any, s: P) -> None:
    """Road surface in metres (the ground plane spans 240 m): worn lighter and darker stretches,
    tar patches, and a fine aggregate bump."""
    metres = nt.nodes.new("ShaderNodeMapping")
    metres.inputs["Scale"].default_value = (120.0, 120.0, 1.0)
    nt.links.new(coord.outputs["Object"], metres.inputs["Vector"])
    wear = noise_at(nt, metres.outputs["Vector"], 0.08)
    tar = op(nt, "GREATER_THAN", noise_at(nt, metres.outputs["Vector"], 0.25, 2.0), 0.62)
    tone = op(nt, "SUBTRACT", op(nt, "MULTIPLY_ADD", wear, 0.6, 0.7), op(nt, "MULTIPLY", tar, 0.35))
    nt.links.new(shaded(nt, s.get("color", (0.08, 0.08, 0.085)), tone), bsdf.inputs["Base Color"])
    bump = nt.nodes.new("ShaderNodeBump")
    bump.inputs["Strength"].default_value = 0.15
    nt.links.new(noise_at(nt, metres.outputs["Vector"], 8.0, 2.0), bump.inputs["Height"])
    nt.links.new(bump.outputs["Normal"], bsdf.inputs["Normal"])


def grime_texture(nt: Any, bsdf: Any, noise: Any, s: P) -> None:
    """Dirt streaks: base colour blended towards a dirt colour by noise."""
    ramp = nt.nodes.new("ShaderNodeValToRGB")
    nt.links.new(noise.outputs["Fac"], ramp.inputs["Fac"])
    ramp.color_ramp.elements[0].position = 0.35
    ramp.color_ramp.elements[0].color = (*s.get("color", (0.8, 0.8, 0.8)), 1.0)
    ramp.color_ramp.elements[1].position = 0.85
    ramp.color_ramp.elements[1].color = (*s.get("dirt", (0.45, 0.43, 0.40)), 1.0)
    nt.links.new(ramp.outputs["Color"], bsdf.inputs["Base Color"])
    # dirt and wear are rougher than clean plastic or paint
    rough = nt.nodes.new("ShaderNodeMapRange")
    rough.inputs["To Min"].default_value = s.get("rough", 0.4) * 0.8
    rough.inputs["To Max"].default_value = min(1.0, s.get("rough", 0.4) * 1.6 + 0.1)
    nt.links.new(noise.outputs["Fac"], rough.inputs["Value"])
    nt.links.new(rough.outputs["Result"], bsdf.inputs["Roughness"])


def add_mesh(kind: str, loc: tuple, scale: tuple = (1, 1, 1), rot: tuple = (0, 0, 0), **kw: Any) -> Any:
    """Add a primitive mesh object and return it."""
    ops = {
        "cyl": bpy.ops.mesh.primitive_cylinder_add,
        "cube": bpy.ops.mesh.primitive_cube_add,
        "sphere": bpy.ops.mesh.primitive_uv_sphere_add,
        "ico": bpy.ops.mesh.primitive_ico_sphere_add,
        "cone": bpy.ops.mesh.primitive_cone_add,
        "torus": bpy.ops.mesh.primitive_torus_add,
        "plane": bpy.ops.mesh.primitive_plane_add,
    }
    ops[kind](location=loc, rotation=rot, **kw)
    ob = bpy.context.active_object
    ob.scale = scale
    return ob


def finish(
    ob: Any, mat: Any, parent: Any = None, bevel: float = 0.0, smooth: bool = True, segs: int = 3
) -> Any:
    """Assign material, optional bevel modifier and smooth shading, parent to an assembly."""
    ob.data.materials.append(mat)
    if bevel > 0:
        mod = ob.modifiers.new("bevel", "BEVEL")
        mod.width = bevel
        mod.segments = segs
        mod.limit_method = "ANGLE"
        mod.use_clamp_overlap = True
    if smooth and ob.type == "MESH":
        ob.data.polygons.foreach_set("use_smooth", [True] * len(ob.data.polygons))
        ob.data.use_auto_smooth = True
        ob.data.auto_smooth_angle = math.radians(50)
    if parent is not None:
        ob.parent = parent
    return ob


def part(
    kind: str,
    loc: tuple,
    scale: tuple,
    mat: Any,
    parent: Any,
    rot: tuple = (0, 0, 0),
    bevel: float = 0.0,
    **kw: Any,
) -> Any:
    """Shorthand: add a primitive, finish it and parent it."""
    return finish(add_mesh(kind, loc, scale, rot, **kw), mat, parent, bevel)


def empty(name: str) -> Any:
    ob = bpy.data.objects.new(name, None)
    bpy.context.scene.collection.objects.link(ob)
    return ob


def tube(p0: tuple, p1: tuple, radius: float, mat: Any, parent: Any = None, verts: int = 16) -> Any:
    """A cylinder between two points."""
    a, b = Vector(p0), Vector(p1)
    d = b - a
    ob = add_mesh("cyl", tuple((a + b) / 2), (radius, radius, d.length / 2), vertices=verts)
    ob.rotation_mode = "QUATERNION"
    ob.rotation_quaternion = d.to_track_quat("Z", "Y")
    return finish(ob, mat, parent)


def wire(p0: tuple, p1: tuple, sag: float, radius: float, mat: Any) -> Any:
    """A sagging cable between two points, as a bevelled curve."""
    cu = bpy.data.curves.new("wire", "CURVE")
    cu.dimensions = "3D"
    cu.bevel_depth = radius
    cu.bevel_resolution = 1
    sp = cu.splines.new("POLY")
    n = 12
    sp.points.add(n - 1)
    a, b = Vector(p0), Vector(p1)
    for i in range(n):
        t = i / (n - 1)
        p = a.lerp(b, t)
        p.z -= sag * 4 * t * (1 - t)
        sp.points[i].co = (p.x, p.y, p.z, 1.0)
    ob = bpy.data.objects.new("wire", cu)
    bpy.context.scene.collection.objects.link(ob)
    cu.materials.append(mat)
    return ob


def label_text(text: str, loc: tuple, rot: tuple, size: float, mat: Any, parent: Any) -> Any:
    """Small flat text (brand names and stickers)."""
    bpy.ops.object.text_add(location=loc, rotation=rot)
    ob = bpy.context.active_object
    ob.data.body = text
    ob.data.size = size
    ob.data.align_x = "CENTER"
    ob.data.align_y = "CENTER"
    ob.data.materials.append(mat)
    ob.parent = parent
    return ob


# --------------------------------------------------------------------------------------------
# devices: each builder returns an assembly empty, mount point at the origin, pointing +X
# --------------------------------------------------------------------------------------------


def huawei_ptz(m: Mats, d: P) -> Any:
    """Huawei IPC6625-Z30: white rounded cylinder housing, dark bubble, L-shaped arm."""
    root = empty("huawei_ptz")
    arm = d.get("arm", 0.32)
    white, dark = m.get("white"), m.get("bubble")
    part("cube", (0.02, 0, 0), (0.02, 0.07, 0.1), white, root, bevel=0.01)  # wall/pole plate
    tube((0.02, 0, 0.0), (arm - 0.04, 0, 0.0), 0.035, white, root)
    part("sphere", (arm - 0.04, 0, 0.0), (0.035, 0.035, 0.035), white, root, segments=16, ring_count=8)
    tube((arm - 0.04, 0, 0.0), (arm, 0, -0.07), 0.035, white, root)
    part("cyl", (arm, 0, -0.09), (0.05, 0.05, 0.03), white, root, vertices=32, bevel=0.01)  # cap
    r, h = d.get("radius", 0.11), d.get("height", 0.19)
    top = -0.115
    part("cyl", (arm, 0, top - h / 2), (r, r, h / 2), white, root, vertices=48, bevel=0.035)
    # thin grey seam ring and slightly narrower lower collar
    part(
        "cyl",
        (arm, 0, top - h - 0.012),
        (r * 0.93, r * 0.93, 0.014),
        m.get("grey"),
        root,
        vertices=48,
        bevel=0.006,
    )
    br = r * 0.78
    part("sphere", (arm, 0, top - h - 0.02), (br, br, br), dark, root, segments=48, ring_count=24)
    # red logo and small label on the housing side (faces the viewer side -Y and +Y)
    for side in (-1, 1):
        y = side * (r + 0.001)
        rot = (math.radians(90), 0, 0 if side < 0 else math.pi)
        part(
            "cyl", (arm, y, top - h * 0.35), (0.018, 0.018, 0.001), m.get("logo"), root, rot=rot, vertices=16
        )
        label_text("HUAWEI", (arm, y * 1.005, top - h * 0.58), rot, 0.026, m.get("ink"), root)
    return root


def huawei_bullet(m: Mats, d: P) -> Any:
    """Huawei IPC6225-VRZ-ES: long white body, overhanging sun visor, knuckle bracket."""
    root = empty("huawei_bullet")
    white = m.get("white")
    reach = d.get("reach", 0.16)
    part("cube", (0.015, 0, 0), (0.015, 0.06, 0.09), white, root, bevel=0.008)
    tube((0.015, 0, -0.02), (reach, 0, -0.02), 0.025, white, root)
    part("sphere", (reach, 0, -0.01), (0.033, 0.033, 0.033), m.get("grey"), root, segments=20, ring_count=10)
    body = empty("bullet_body")
    body.parent = root
    build_bullet_body(m, body, d)
    body.location = (reach, 0, 0.055)
    body.rotation_euler = Euler((0, math.radians(d.get("pitch", 15)), math.radians(d.get("yaw", 0))), "XYZ")
    return root


def build_bullet_body(m: Mats, body: Any, d: P) -> None:
    """Body of a bullet camera, optical axis +X, neck at the origin."""
    L, w, h = d.get("length", 0.30), d.get("width", 0.105), d.get("h", 0.095)
    white = m.get(d.get("mat", "white"))
    tube((0, 0, -0.05), (0, 0, 0.0), 0.022, white, body)
    part("cube", (0.02, 0, h / 2), (L / 2, w / 2, h / 2), white, body, bevel=min(w, h) * 0.38)
    vis = d.get("visor", 0.07)
    part(
        "cube",
        (0.02 + vis / 2, 0, h + 0.012),
        ((L + vis) / 2, w / 2 + 0.008, 0.005),
        white,
        body,
        bevel=0.004,
    )
    # curved visor sides
    for side in (-1, 1):
        part(
            "cube",
            (0.02 + vis / 2 + L * 0.1, side * (w / 2 + 0.006), h * 0.8),
            (L * 0.45, 0.003, h * 0.22),
            white,
            body,
            bevel=0.002,
        )
    lens_r = min(w, h) * 0.36
    part(
        "cyl",
        (0.02 + L / 2 + 0.002, 0, h / 2),
        (lens_r * 1.2, lens_r * 1.2, 0.004),
        m.get("bubble"),
        body,
        rot=(0, math.radians(90), 0),
        vertices=32,
    )
    part(
        "cyl",
        (0.02 + L / 2 + 0.004, 0, h / 2),
        (lens_r * 0.55, lens_r * 0.55, 0.004),
        m.get("lens"),
        body,
        rot=(0, math.radians(90), 0),
        vertices=24,
    )
    if d.get("logo", True):
        for side in (-1, 1):
            rot = (math.radians(90), 0, 0 if side < 0 else math.pi)
            label_text(
                "HUAWEI", (0.02 + L * 0.12, side * (w / 2 + 0.002), h * 0.45), rot, 0.022, m.get("ink"), body
            )
            part(
                "cyl",
                (0.02 - L * 0.18, side * (w / 2 + 0.001), h * 0.45),
                (0.011, 0.011, 0.001),
                m.get("logo"),
                body,
                rot=rot,
                vertices=12,
            )


def other_ptz(m: Mats, d: P) -> Any:
    """Other vendors' PTZ domes: spherical or squat housings, black/grey/white, pendant or arm."""
    root = empty("other_ptz")
    hous = m.get(d.get("mat", "housing"))
    arm = d.get("arm", 0.28)
    shape = d.get("shape", "sphere")
    if d.get("pendant", False):
        part("cube", (0.01, 0, 0.05), (0.01, 0.05, 0.08), hous, root, bevel=0.005)
        tube((0.01, 0, 0.12), (arm, 0, 0.12), 0.03, hous, root)
        tube((arm, 0, 0.12), (arm, 0, -0.08), 0.03, hous, root)
    else:
        part("cube", (0.01, 0, 0), (0.01, 0.06, 0.09), hous, root, bevel=0.008)
        tube((0.01, 0, 0.02), (arm, 0, -0.02), d.get("arm_r", 0.03), hous, root)
        part("cube", (arm, 0, -0.04), (0.045, 0.045, 0.04), hous, root, bevel=0.015)
    r, h = d.get("radius", 0.12), d.get("height", 0.16)
    z = -0.08
    if shape == "sphere":
        part("sphere", (arm, 0, z - r * 0.9), (r, r, r * 0.95), hous, root, segments=40, ring_count=20)
        br = r * 0.85
        part("sphere", (arm, 0, z - r * 1.2), (br, br, br), m.get("bubble"), root, segments=40, ring_count=20)
    else:
        part("cyl", (arm, 0, z - h / 2), (r, r, h / 2), hous, root, vertices=40, bevel=0.015)
        if shape == "bell":
            part(
                "cone",
                (arm, 0, z + 0.005),
                (r * 1.05, r * 1.05, 0.03),
                hous,
                root,
                vertices=40,
                radius1=1,
                radius2=0.5,
                depth=2,
            )
        br = r * d.get("bubble_ratio", 0.85)
        part("sphere", (arm, 0, z - h), (br, br, br), m.get("bubble"), root, segments=40, ring_count=20)
    if d.get("ir_ring", False):
        part(
            "torus",
            (arm, 0, z - h * 0.9),
            (r, r, 0.5),
            m.get("grey"),
            root,
            major_radius=1,
            minor_radius=0.04,
        )
    return root


def turret(m: Mats, d: P) -> Any:
    """Small turret ('eyeball') camera: base cup and ball, on a small wall adapter."""
    root = empty("turret")
    hous = m.get(d.get("mat", "housing"))
    r = d.get("radius", 0.06)
    part("cube", (0.03, 0, 0), (0.03, 0.05, 0.05), hous, root, bevel=0.01)
    part("cyl", (0.08, 0, -0.06), (r * 1.4, r * 1.4, 0.02), hous, root, vertices=40, bevel=0.008)
    part("sphere", (0.08, 0, -0.09), (r, r, r), hous, root, segments=32, ring_count=16)
    part(
        "cyl",
        (0.08 + r * 0.55, 0, -0.12),
        (r * 0.5, r * 0.5, 0.01),
        m.get("bubble"),
        root,
        rot=(0, math.radians(125), 0),
        vertices=24,
    )
    return root


def vandal_dome(m: Mats, d: P) -> Any:
    """Vandal dome: flat round base and a smoked/clear hemisphere, on a pole/wall adapter."""
    root = empty("vandal")
    hous = m.get(d.get("mat", "housing"))
    r = d.get("radius", 0.08)
    part("cube", (0.02, 0, 0), (0.02, 0.05, 0.06), hous, root, bevel=0.006)
    tube((0.02, 0, 0), (0.1, 0, 0), 0.025, hous, root)
    part("cyl", (0.1 + r, 0, -0.02), (r * 1.25, r * 1.25, 0.025), hous, root, vertices=40, bevel=0.01)
    part("sphere", (0.1 + r, 0, -0.045), (r, r, r), m.get("bubble"), root, segments=32, ring_count=16)
    return root


def fisheye(m: Mats, d: P) -> Any:
    """Fisheye: wide flat disc with a small central dome."""
    root = empty("fisheye")
    hous = m.get(d.get("mat", "housing"))
    r = d.get("radius", 0.09)
    part("cube", (0.02, 0, 0), (0.02, 0.05, 0.06), hous, root, bevel=0.006)
    tube((0.02, 0, 0.0), (0.12, 0, 0.0), 0.025, hous, root)
    part("cyl", (0.12 + r, 0, -0.02), (r, r, 0.03), hous, root, vertices=48, bevel=0.015)
    part(
        "sphere",
        (0.12 + r, 0, -0.05),
        (r * 0.35, r * 0.35, r * 0.3),
        m.get("bubble"),
        root,
        segments=24,
        ring_count=12,
    )
    return root


def box_camera(m: Mats, d: P) -> Any:
    """Box camera in an outdoor housing with a flat sun shield, on a wall bracket."""
    root = empty("box")
    hous = m.get(d.get("mat", "housing"))
    reach = d.get("reach", 0.22)
    part("cube", (0.015, 0, 0), (0.015, 0.05, 0.08), hous, root, bevel=0.005)
    tube((0.015, 0, 0), (reach, 0, 0.03), 0.02, hous, root)
    body = empty("box_body")
    body.parent = root
    L, w, h = d.get("length", 0.38), d.get("width", 0.11), d.get("h", 0.1)
    part("cube", (0.03, 0, h / 2 + 0.02), (L / 2, w / 2, h / 2), hous, body, bevel=0.006)
    part(
        "cube",
        (0.06, 0, h + 0.03),
        (L / 2 + 0.04, w / 2 + 0.01, 0.004),
        m.get(d.get("shield", "housing")),
        body,
        bevel=0.002,
    )
    part("cube", (0.03 + L / 2 + 0.001, 0, h / 2 + 0.02), (0.002, w * 0.42, h * 0.4), m.get("bubble"), body)
    if d.get("ir_panel", False):  # ALPR / traffic camera: IR illuminator beside the housing
        part(
            "cube",
            (0.03 + L / 2 - 0.05, w * 1.1, h / 2 + 0.02),
            (0.05, w * 0.45, h * 0.45),
            hous,
            body,
            bevel=0.004,
        )
        part(
            "cube",
            (0.03 + L / 2 + 0.001, w * 1.1, h / 2 + 0.02),
            (0.002, w * 0.38, h * 0.38),
            m.get("ir"),
            body,
        )
    body.location = (reach, 0, 0.03)
    body.rotation_euler = Euler((0, math.radians(d.get("pitch", 12)), math.radians(d.get("yaw", 0))), "XYZ")
    return root


def other_bullet(m: Mats, d: P) -> Any:
    """Other vendors' bullets: cylindrical or boxy, black/grey/white, short or no visor."""
    root = empty("other_bullet")
    hous = m.get(d.get("mat", "housing"))
    part("cube", (0.015, 0, 0), (0.015, 0.05, 0.06), hous, root, bevel=0.005)
    tube((0.015, 0, 0), (0.1, 0, 0.0), 0.018, hous, root)
    body = empty("ob_body")
    body.parent = root
    L, r = d.get("length", 0.2), d.get("radius", 0.04)
    tube((0, 0, 0), (0, 0, 0.04), 0.015, hous, body)
    part(
        "cyl",
        (0.03, 0, 0.04 + r),
        (r, r, L / 2),
        hous,
        body,
        rot=(0, math.radians(90), 0),
        vertices=32,
        bevel=0.008,
    )
    if d.get("visor", 0.0) > 0:
        part(
            "cube",
            (0.03 + d["visor"] / 2, 0, 0.045 + 2 * r),
            ((L + d["visor"]) / 2, r * 1.1, 0.003),
            hous,
            body,
        )
    part(
        "cyl",
        (0.03 + L / 2 + 0.001, 0, 0.04 + r),
        (r * 0.8, r * 0.8, 0.003),
        m.get("bubble"),
        body,
        rot=(0, math.radians(90), 0),
        vertices=24,
    )
    body.location = (0.1, 0, 0.0)
    body.rotation_euler = Euler((0, math.radians(d.get("pitch", 15)), math.radians(d.get("yaw", 0))), "XYZ")
    return root


def street_light(m: Mats, d: P) -> Any:
    """Street light head on an outreach arm (cobra head or LED slab)."""
    root = empty("streetlight")
    arm = d.get("arm", 1.2)
    pole = m.get("pole")
    tube((0, 0, 0), (arm * 0.6, 0, 0.25), 0.035, pole, root)
    tube((arm * 0.6, 0, 0.25), (arm, 0, 0.3), 0.035, pole, root)
    head = m.get(d.get("mat", "housing"))
    part("cube", (arm + 0.25, 0, 0.3), (0.32, 0.14, 0.05), head, root, bevel=0.03)
    part("cube", (arm + 0.27, 0, 0.245), (0.26, 0.1, 0.008), m.get("lamp"), root)
    return root


def loudspeaker(m: Mats, d: P) -> Any:
    """Horn loudspeaker on a bracket."""
    root = empty("speaker")
    hous = m.get(d.get("mat", "housing"))
    tube((0, 0, 0), (0.12, 0, 0), 0.02, hous, root)
    part(
        "cone",
        (0.25, 0, -0.03),
        (1, 1, 1),
        hous,
        root,
        rot=(0, math.radians(100), 0),
        vertices=32,
        radius1=0.14,
        radius2=0.05,
        depth=0.25,
    )
    part("cyl", (0.1, 0, -0.01), (0.06, 0.06, 0.05), hous, root, rot=(0, math.radians(100), 0), vertices=24)
    return root


def antenna(m: Mats, d: P) -> Any:
    """Panel antenna or whip antenna with a box."""
    root = empty("antenna")
    hous = m.get(d.get("mat", "housing"))
    if d.get("panel", True):
        tube((0, 0, 0), (0.1, 0, 0), 0.02, hous, root)
        part("cube", (0.14, 0, 0.1), (0.04, 0.12, 0.5), hous, root, bevel=0.02)
    else:
        part("cube", (0.08, 0, 0), (0.08, 0.1, 0.12), hous, root, bevel=0.01)
        tube((0.1, 0, 0.1), (0.1, 0, 0.9), 0.008, hous, root)
        tube((0.06, 0.05, 0.1), (0.06, 0.05, 0.6), 0.006, hous, root)
    return root


def signal_head(m: Mats, d: P) -> Any:
    """Traffic signal head: dark box, three lenses with hoods, optional backplate."""
    root = empty("signal")
    hous = m.get(d.get("mat", "signal"))
    tube((0, 0, 0), (0.1, 0, 0), 0.025, hous, root)
    part("cube", (0.2, 0, 0), (0.1, 0.14, 0.4), hous, root, bevel=0.02)
    if d.get("backplate", True):
        part("cube", (0.12, 0, 0), (0.01, 0.24, 0.52), m.get("signal"), root)
    lit = d.get("lit", 0)
    for i, z in enumerate((0.26, 0.0, -0.26)):
        lens = m.get(("red_on" if i == 0 else "amber_on" if i == 1 else "green_on") if i == lit else "lens")
        part("cyl", (0.305, 0, z), (0.1, 0.1, 0.01), lens, root, rot=(0, math.radians(90), 0), vertices=24)
        part(
            "cyl",
            (0.33, 0, z + 0.05),
            (0.11, 0.11, 0.04),
            hous,
            root,
            rot=(0, math.radians(90), 0),
            vertices=24,
        )
    return root


def bird_box(m: Mats, d: P) -> Any:
    """Wooden bird box with a hole and a sloped roof."""
    root = empty("birdbox")
    wood = m.get("wood")
    part("cube", (0.1, 0, 0), (0.09, 0.1, 0.15), wood, root, bevel=0.004)
    part("cube", (0.12, 0, 0.17), (0.13, 0.13, 0.012), wood, root, rot=(0, math.radians(-15), 0))
    part("cyl", (0.191, 0, 0.05), (0.025, 0.025, 0.002), m.get("lens"), root, rot=(0, math.radians(90), 0))
    return root


def sign(m: Mats, d: P) -> Any:
    """Road sign plate on a clamp (round, triangle or square)."""
    root = empty("sign")
    plate = m.get(d.get("mat", "sign_blue"))
    tube((0, 0, 0), (0.08, 0, 0), 0.015, m.get("pole"), root)
    s = d.get("size", 0.3)
    shape = d.get("shape", "round")
    if shape == "round":
        part("cyl", (0.09, 0, 0), (s, s, 0.006), plate, root, rot=(0, math.radians(90), 0), vertices=40)
        part(
            "cyl",
            (0.097, 0, 0),
            (s * 0.8, s * 0.8, 0.002),
            m.get("sign_inner"),
            root,
            rot=(0, math.radians(90), 0),
            vertices=40,
        )
    elif shape == "triangle":
        part("cyl", (0.09, 0, 0), (s, s, 0.006), plate, root, rot=(0, math.radians(90), 0), vertices=3)
    else:
        part("cube", (0.09, 0, 0), (0.006, s, s), plate, root, bevel=0.01)
    return root


def junction_box(m: Mats, d: P) -> Any:
    """Small grey cabinet strapped to a pole or wall (empty-pole scenes)."""
    root = empty("junction")
    part("cube", (0.08, 0, 0), (0.07, 0.12, 0.18), m.get(d.get("mat", "grey")), root, bevel=0.01)
    return root


BODY_MATS = {"black": "cam_black", "grey": "grey", "white": "white"}


def handheld_camera(m: Mats, d: P) -> Any:
    """A photographer's camera (mirrorless/DSLR, compact or camcorder), lens along +X, its
    base at the origin (a tripod's head)."""
    root = empty("handheld_camera")
    body = empty("handheld_body")
    body.parent = root
    mat, black, glass = m.get(BODY_MATS[d.get("mat", "black")]), m.get("cam_black"), m.get("lens")
    style, w, h = d.get("style", "dslr"), d.get("width", 0.13), d.get("h", 0.09)
    dep = d.get("depth", 0.07) * (0.6 if style == "compact" else 1.0)
    if style == "camcorder":
        w = w * 0.6
    part("cube", (0, 0, h / 2 + 0.01), (dep / 2, w / 2, h / 2), mat, body, bevel=min(0.012, h / 6))
    if style == "dslr":  # grip, viewfinder hump, shutter button
        part(
            "cube",
            (dep * 0.1, -w / 2 + 0.012, h / 2 + 0.008),
            (dep * 0.42, 0.02, h * 0.47),
            black,
            body,
            bevel=0.008,
        )
        part("cube", (-0.005, 0, h + 0.018), (dep * 0.32, w * 0.16, 0.016), mat, body, bevel=0.006)
        part("cyl", (dep * 0.2, -w / 2 + 0.015, h + 0.016), (0.006, 0.006, 0.004), black, body)
    if style == "camcorder":  # flip-out screen and hand strap
        part(
            "cube",
            (-dep * 0.05, w / 2 + 0.035, h * 0.55),
            (dep * 0.22, 0.004, h * 0.38),
            black,
            body,
            rot=(0, 0, math.radians(-70)),
            bevel=0.003,
        )
        tube((-dep * 0.35, -w / 2 - 0.01, h * 0.5), (dep * 0.3, -w / 2 - 0.01, h * 0.5), 0.008, black, body)
    r, ln = d.get("lens_r", 0.035), d.get("lens_len", 0.08)
    x0 = dep / 2 if style != "camcorder" else dep / 2 - 0.01
    lz = h / 2 + 0.01 if style != "compact" else h * 0.45
    part(
        "cyl",
        (x0 + ln / 2, 0, lz),
        (r, r, ln / 2 + 0.002),
        black,
        body,
        rot=(0, math.radians(90), 0),
        vertices=32,
    )
    part(
        "torus",
        (x0 + ln * 0.6, 0, lz),
        (1, 1, 1),
        m.get("grey"),
        body,
        rot=(0, math.radians(90), 0),
        major_radius=r * 1.01,
        minor_radius=0.0025,
    )
    part(
        "cyl",
        (x0 + ln + 0.002, 0, lz),
        (r * 0.82, r * 0.82, 0.002),
        glass,
        body,
        rot=(0, math.radians(90), 0),
        vertices=32,
    )
    body.rotation_euler = Euler((0, math.radians(-d.get("pitch", 0)), math.radians(d.get("yaw", 0))), "XYZ")
    return root


def phone(m: Mats, d: P) -> Any:
    """A smartphone in a tripod clamp, camera lenses on the +X face, screen on the other."""
    root = empty("phone")
    body = empty("phone_body")
    body.parent = root
    w, h = d.get("w", 0.072), d.get("h", 0.15)
    if d.get("landscape"):
        w, h = h, w
    part(
        "cube",
        (0, 0, h / 2 + 0.02),
        (0.004, w / 2, h / 2),
        m.get(BODY_MATS[d.get("mat", "black")]),
        body,
        bevel=0.003,
    )
    part("cube", (-0.0042, 0, h / 2 + 0.02), (0.0002, w / 2 - 0.003, h / 2 - 0.004), m.get("bubble"), body)
    part("cube", (0, 0, 0.01), (0.01, 0.03, 0.012), m.get("cam_black"), body, bevel=0.002)  # clamp
    for i in range(int(d.get("lenses", 2))):
        y, z = w / 2 - 0.015, h + 0.02 - 0.015 - i * 0.013
        part(
            "cyl",
            (0.0045, y, z),
            (0.005, 0.005, 0.0015),
            m.get("lens"),
            body,
            rot=(0, math.radians(90), 0),
            vertices=24,
        )
    body.rotation_euler = Euler((0, 0, math.radians(d.get("yaw", 0))), "XYZ")
    return root


def smoke_detector(m: Mats, d: P) -> Any:
    """A white disc detector or sensor on a short bracket (a white-dome look-alike)."""
    root = empty("smoke_detector")
    r, h, reach = d.get("radius", 0.06), d.get("h", 0.04), d.get("reach", 0.1)
    white = m.get("white")
    part("cube", (0.01, 0, 0), (0.01, 0.04, 0.04), white, root, bevel=0.004)
    tube((0.01, 0, 0), (reach, 0, 0), 0.012, white, root)
    part(
        "cyl",
        (reach + h / 2, 0, 0),
        (r, r, h / 2),
        white,
        root,
        rot=(0, math.radians(90), 0),
        bevel=0.01,
        vertices=40,
    )
    part(
        "cyl",
        (reach + h + 0.001, 0, 0),
        (r * 0.5, r * 0.5, 0.002),
        m.get("grey"),
        root,
        rot=(0, math.radians(90), 0),
        vertices=32,
    )
    part("sphere", (reach + h + 0.002, r * 0.3, r * 0.3), (0.003, 0.003, 0.003), m.get("red_on"), root)
    return root


def builder(builders: P, kind: str) -> Any:
    """The function that builds a device ``kind``, named by the job (devices.DEVICE_KINDS)."""
    fn = globals().get(builders.get(kind, ""))
    if not callable(fn):
        raise ValueError(f"no builder for device kind {kind!r} (job names {builders.get(kind)!r})")
    return fn


# --------------------------------------------------------------------------------------------
# structures, backdrop, occluders
# --------------------------------------------------------------------------------------------


def build_mount(m: Mats, s: P) -> None:
    """The pole or wall that devices hang on, at the origin."""
    if s["kind"] == "tripod":
        tripod(m, s)
        return
    if s["kind"] == "pole":
        r, h = s["radius"], s["height"]
        finish(add_mesh("cyl", (0, 0, h / 2), (r, r, h / 2), vertices=32), m.get("pole"))
        part("cyl", (0, 0, h * 0.55), (r * 1.15, r * 1.15, 0.08), m.get("pole"), None, vertices=32)
        if s.get("crossarm"):
            z = s["crossarm"]
            tube((0, 0, z), (s.get("crossarm_len", 3.0), 0, z - 0.3), r * 0.6, m.get("pole"))
        for z in s.get("bands", []):  # clamp bands under devices
            part("cyl", (0, 0, z), (r * 1.08, r * 1.08, 0.03), m.get("grey"), None, vertices=32)
    else:
        w, h = 14.0, s["height"]
        wall = add_mesh(
            "plane", (0, 0, h / 2), (w / 2, h / 2, 1), rot=(math.radians(90), 0, math.radians(90))
        )
        finish(wall, m.get("wall"), smooth=False)
        if s.get("corner"):
            wall2 = add_mesh(
                "plane", (w / 2, -s["corner"], h / 2), (w / 2, h / 2, 1), rot=(math.radians(90), 0, 0)
            )
            finish(wall2, m.get("wall"), smooth=False)
        part("cube", (0.15, 0, s.get("ledge", 3.2)), (0.15, 7, 0.12), m.get("wall_trim"), None)


def tripod(m: Mats, s: P) -> None:
    """Three legs, a centre column and a head whose top is at the mount's height."""
    h, spread = s["height"], s.get("legs", 0.4)
    mat = m.get("tripod")
    top = (0.0, 0.0, h - 0.06)
    for i in range(3):
        a = math.radians(90 + 120 * i)
        tube(top, (spread * math.cos(a), spread * math.sin(a), 0.0), 0.011, mat, verts=12)
    tube((0, 0, h * 0.45), (0, 0, h - 0.02), 0.012, mat, verts=12)
    part("cube", (0, 0, h - 0.012), (0.03, 0.03, 0.012), m.get("cam_black"), None, bevel=0.004)


def place(ob: Any, mount: P, dev: P) -> None:
    """Put a device assembly on the mount at its height and azimuth."""
    az = math.radians(dev["azimuth"])
    if mount["kind"] == "tripod":
        x, y = 0.0, 0.0
    elif mount["kind"] == "pole":
        x, y = mount["radius"] * math.cos(az), mount["radius"] * math.sin(az)
    else:  # wall in the YZ plane facing +X; devices sit along it
        x, y = 0.0, dev.get("offset", 0.0)
    ob.location = (x, y, dev["z"])
    ob.rotation_euler = (0, 0, az)
    ob.scale = (dev.get("scale", 1.0),) * 3


def build_backdrop(m: Mats, b: P) -> list[Any]:
    """Ground, facades, trees, background poles and overhead wires; returns the poles' lights."""
    finish(add_mesh("plane", (0, 0, 0), (120, 120, 1)), m.get("asphalt"), smooth=False)
    for i, f in enumerate(b.get("buildings", [])):
        key = f"facade{i}"
        m.spec[key] = f["mat"]
        ob = add_mesh(
            "plane",
            tuple(f["loc"]),
            (f["w"] / 2, f["h"] / 2, 1),
            rot=(math.radians(90), 0, math.radians(f["rot"])),
        )
        finish(ob, m.get(key), smooth=False)
        if f.get("roof", True):
            part(
                "cube",
                (f["loc"][0], f["loc"][1], f["h"] + 0.2),
                (f["w"] / 2 + 0.3, 0.4, 0.25),
                m.get("wall_trim"),
                None,
                rot=(0, 0, math.radians(f["rot"])),
            )
    for t in b.get("trees", []):
        tree(m, t)
    lights = []
    for p in b.get("poles", []):
        x, y, h = p
        finish(add_mesh("cyl", (x, y, h / 2), (0.08, 0.08, h / 2), vertices=16), m.get("pole"))
        ob = street_light(m, {"arm": 1.0, "mat": "housing"})
        ob.location = (x, y, h - 0.3)
        ob.rotation_euler = (0, 0, math.atan2(-y, -x))
        lights.append(ob)
    for w in b.get("wires", []):
        wire(tuple(w["a"]), tuple(w["b"]), w["sag"], w.get("r", 0.008), m.get("cable"))
    return lights


def tree(m: Mats, t: P) -> None:
    """A simple tree: trunk, a few branches and clumps of leaves with holes."""
    x, y, h = t["x"], t["y"], t["h"]
    bark = m.get("bark")
    tube((x, y, 0), (x, y, h * 0.55), 0.12 * h / 8, bark)
    for c in t["clumps"]:
        cx, cy, cz, r = c
        tube((x, y, h * 0.45), (x + cx * 0.7, y + cy * 0.7, cz * 0.9), 0.04 * h / 8, bark)
        ob = add_mesh("ico", (x + cx, y + cy, cz), (r, r, r * 0.8), subdivisions=3)
        finish(ob, m.get("leaves"))
        add_leaves(ob, m, 0.14, r, seed=int(abs(cx * 1000 + cy * 100 + cz * 10)))


def leaf_source(m: Mats) -> Any:
    """One leaf (a unit-long diamond), hidden: every clump instances it thousands of times."""
    found = bpy.data.objects.get("leaf_source")
    if found is not None:
        return found
    mesh = bpy.data.meshes.new("leaf")
    mesh.from_pydata([(0, 0, 0), (0.5, 0.28, 0.05), (1, 0, 0), (0.5, -0.28, 0.05)], [], [(0, 1, 2, 3)])
    ob = bpy.data.objects.new("leaf_source", mesh)
    bpy.context.scene.collection.objects.link(ob)
    mesh.materials.append(leaf_material(m))
    ob.hide_render = True
    return ob


def leaf_material(m: Mats) -> Any:
    """The clumps' leaf colour, each leaf a little lighter or darker, some light let through."""
    mat, nt, bsdf = principled("leaf")
    col = m.spec.get("leaves", {}).get("color", (0.08, 0.18, 0.04))
    info = nt.nodes.new("ShaderNodeObjectInfo")
    shade = mix_colour(nt, info.outputs["Random"], [c * 0.55 for c in col], [min(1.0, c * 1.5) for c in col])
    nt.links.new(shade, bsdf.inputs["Base Color"])
    bsdf.inputs["Roughness"].default_value = 0.55
    bsdf.inputs["Specular"].default_value = 0.35
    through = nt.nodes.new("ShaderNodeBsdfTranslucent")
    nt.links.new(shade, through.inputs["Color"])
    mix = nt.nodes.new("ShaderNodeMixShader")
    mix.inputs["Fac"].default_value = 0.25
    nt.links.new(bsdf.outputs["BSDF"], mix.inputs[1])
    nt.links.new(through.outputs["BSDF"], mix.inputs[2])
    nt.links.new(mix.outputs["Shader"], nt.nodes["Material Output"].inputs["Surface"])
    return mat


def add_leaves(
    ob: Any, m: Mats, leaf: float, radius: float, seed: int, *, cover: float = 2.2, dent: float = 0.9
) -> None:
    """Cover a foliage clump ``ob`` (a sphere mesh scaled by about ``radius``) with randomly turned
    leaves of about ``leaf`` metres (geometry nodes instancing on a second object that shares its
    mesh); ``ob`` itself, a little smaller, is the dark inside. Both are dented by the same cloud
    texture, and leaves are left out where a noise field is low: ragged, see-through crowns
    rather than balls. The leaves cast no shadow (thousands of small leaves give a dappled shade
    that a few samples render as speckle); the inside casts the crown's shade."""
    leaves = bpy.data.objects.new(ob.name + "_leaves", ob.data)
    bpy.context.scene.collection.objects.link(leaves)
    leaves.location, leaves.rotation_euler = ob.location.copy(), ob.rotation_euler.copy()
    leaves.scale = ob.scale.copy()
    leaves.visible_shadow = False
    if dent:
        clouds = bpy.data.textures.new("crown", "CLOUDS")
        clouds.noise_scale = 0.5
    for target in (ob, leaves) if dent else ():
        mod = target.modifiers.new("crown", "DISPLACE")
        mod.texture = clouds
        mod.strength = dent
        mod.mid_level = 0.6
    ob.scale = ob.scale * 0.85
    ng = bpy.data.node_groups.new("leaves", "GeometryNodeTree")
    ng.inputs.new("NodeSocketGeometry", "Geometry")
    ng.outputs.new("NodeSocketGeometry", "Geometry")
    nodes, links = ng.nodes, ng.links
    gin, gout = nodes.new("NodeGroupInput"), nodes.new("NodeGroupOutput")
    local = leaf / radius  # the clump's mesh is a unit sphere scaled by the object
    dist = nodes.new("GeometryNodeDistributePointsOnFaces")
    dist.inputs["Density"].default_value = cover / (0.3 * local * local)
    dist.inputs["Seed"].default_value = seed
    gaps = nodes.new("ShaderNodeTexNoise")
    gaps.inputs["Scale"].default_value = 1.2
    gaps.inputs["Detail"].default_value = 3.0
    keep = nodes.new("FunctionNodeCompare")
    keep.data_type = "FLOAT"
    keep.operation = "GREATER_THAN"
    keep.inputs[1].default_value = 0.46
    links.new(gaps.outputs["Fac"], keep.inputs[0])
    links.new(keep.outputs["Result"], dist.inputs["Selection"])
    info = nodes.new("GeometryNodeObjectInfo")
    info.inputs["Object"].default_value = leaf_source(m)
    turn = nodes.new("FunctionNodeRandomValue")
    turn.data_type = "FLOAT_VECTOR"
    turn.inputs[1].default_value = (6.283, 6.283, 6.283)
    size = nodes.new("FunctionNodeRandomValue")
    size.data_type = "FLOAT"
    size.inputs[2].default_value = 0.6 * local
    size.inputs[3].default_value = 1.4 * local
    inst = nodes.new("GeometryNodeInstanceOnPoints")
    links.new(gin.outputs[0], dist.inputs["Mesh"])
    links.new(dist.outputs["Points"], inst.inputs["Points"])
    links.new(info.outputs["Geometry"], inst.inputs["Instance"])
    links.new(turn.outputs[0], inst.inputs["Rotation"])
    links.new(size.outputs[1], inst.inputs["Scale"])
    links.new(inst.outputs["Instances"], gout.inputs[0])
    leaves.modifiers.new("leaves", "NODES").node_group = ng


def build_occluders(m: Mats, occ: list[P], cam: Any, centre: Vector) -> None:
    """Foreground branches, wires and signs partly between the viewer and the subject."""
    eye = cam.location.copy()
    los = centre - eye
    rot = cam.matrix_world.to_3x3()
    right, up = rot @ Vector((1, 0, 0)), rot @ Vector((0, 1, 0))
    for o in occ:
        half = o["t"] * los.length * 18.0 / cam.data.lens  # half frame width at that depth
        a = math.radians(o["angle"])
        direction = right * math.cos(a) + up * math.sin(a)
        p = eye + los * o["t"] + direction * o["off"] * half
        if o["kind"] == "leaves":
            r = o["size"] * half
            for k in range(4):
                q = p + direction * r * 0.6 * k + up * r * 0.25 * ((k % 2) - 0.5)
                ob = add_mesh("ico", tuple(q), (r * 0.7, r * 0.7, r * 0.5), subdivisions=2)
                finish(ob, m.get("leaves"))
                # a branch in front: sparse leaves, the subject must stay partly visible
                add_leaves(ob, m, min(0.14, max(0.02, r * 0.12)), r * 0.7, seed=k, cover=0.7, dent=0.0)
            tube(
                tuple(p),
                tuple(p + direction * 3 * r - Vector((0, 0, r))),
                max(0.004, r * 0.04),
                m.get("bark"),
            )
        elif o["kind"] == "wire":
            q = eye + los * o["t"] + up * o["off"] * half
            wire(
                tuple(q - right * 40),
                tuple(q + right * 40 + up * 40 * o["tilt"]),
                o["sag"],
                o["r"],
                m.get("cable"),
            )
        else:
            ob = add_mesh("cube", tuple(p), (0.01, o["size"] * half, o["size"] * half * 0.8))
            ob.rotation_euler = (0, 0, math.atan2(los.y, los.x))
            finish(ob, m.get("sign_blue"), bevel=0.01)


# --------------------------------------------------------------------------------------------
# lighting, viewer camera, render settings
# --------------------------------------------------------------------------------------------


def build_world(light: P) -> None:
    """Sky (Nishita, mixed towards grey when overcast) or a dark night sky."""
    world = bpy.data.worlds.new("world")
    bpy.context.scene.world = world
    world.use_nodes = True
    # the default 1024 px importance map costs seconds per render; a coarse one is plenty here
    world.cycles.sampling_method = "MANUAL"
    world.cycles.sample_map_resolution = 64
    nt = world.node_tree
    bg = nt.nodes["Background"]
    if light.get("hdri"):
        hdri_world(nt, bg, light["hdri"])
        return
    if light["sky"] == "night":
        grad = nt.nodes.new("ShaderNodeTexSky")
        grad.sky_type = "NISHITA"
        grad.sun_elevation = math.radians(-6)
        grad.sun_disc = False
        bg.inputs["Color"].default_value = (*light["night_color"], 1)
        bg.inputs["Strength"].default_value = light["sky_strength"]
        return
    sky = nt.nodes.new("ShaderNodeTexSky")
    sky.sky_type = "NISHITA"
    sky.sun_elevation = math.radians(light["sun_elev"])
    sky.sun_rotation = math.radians(light["sun_az"] - 90.0)  # Nishita puts the sun at rotation + 90 deg
    sky.sun_disc = light.get("sun_disc", False)
    sky.sun_size = math.radians(1.5)
    sky.sun_intensity = light.get("sun_intensity", 0.3)
    sky.air_density = light.get("air", 1.0)
    sky.dust_density = light.get("dust", 1.0)
    grey = nt.nodes.new("ShaderNodeRGB")
    grey.outputs[0].default_value = (*light.get("haze_color", (0.75, 0.77, 0.8)), 1)
    mix = nt.nodes.new("ShaderNodeMixRGB")
    mix.inputs["Fac"].default_value = light.get("haze", 0.0)
    nt.links.new(sky.outputs["Color"], mix.inputs["Color1"])
    nt.links.new(grey.outputs["Color"], mix.inputs["Color2"])
    nt.links.new(mix.outputs["Color"], bg.inputs["Color"])
    bg.inputs["Strength"].default_value = light["sky_strength"]


def hdri_world(nt: Any, bg: Any, h: P) -> None:
    """Environment light and sky from one of Blender's CC0 HDR photos, rotated about the
    vertical, its sun clamped (the sun lamp takes its place)."""
    folder = bpy.utils.system_resource("DATAFILES", path="studiolights/world")
    path = os.path.join(folder, h["name"] + ".exr")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: HDR map missing from this Blender installation")
    coord = nt.nodes.new("ShaderNodeTexCoord")
    mapping = nt.nodes.new("ShaderNodeMapping")
    mapping.vector_type = "VECTOR"
    mapping.inputs["Rotation"].default_value = (0.0, 0.0, math.radians(h["rotation"]))
    env = nt.nodes.new("ShaderNodeTexEnvironment")
    env.image = bpy.data.images.load(path, check_existing=True)
    env.interpolation = "Linear"
    clamp = nt.nodes.new("ShaderNodeVectorMath")
    clamp.operation = "MINIMUM"
    clamp.inputs[1].default_value = (h["clamp"],) * 3
    nt.links.new(coord.outputs["Generated"], mapping.inputs["Vector"])
    nt.links.new(mapping.outputs["Vector"], env.inputs["Vector"])
    nt.links.new(env.outputs["Color"], clamp.inputs[0])
    nt.links.new(clamp.outputs["Vector"], bg.inputs["Color"])
    bg.inputs["Strength"].default_value = h["strength"]
    bpy.context.scene.world.cycles.sample_map_resolution = 256  # a photo's sky is not smooth


def build_lights(light: P) -> None:
    """Sun lamp matching the sky, and street lamps at dusk/night."""
    if light.get("sun_strength", 0) > 0:
        sun = bpy.data.lights.new("sun", "SUN")
        sun.energy = light["sun_strength"]
        sun.angle = math.radians(1.0)
        sun.color = light.get("sun_color", (1, 1, 1))
        ob = bpy.data.objects.new("sun", sun)
        bpy.context.scene.collection.objects.link(ob)
        el, az = math.radians(light["sun_elev"]), math.radians(light["sun_az"])
        ob.rotation_euler = Euler((math.pi / 2 - el, 0, az + math.pi / 2), "XYZ")
    for lamp in light.get("lamps", []):
        pl = bpy.data.lights.new("lamp", "POINT")
        pl.energy = lamp["power"]
        pl.color = lamp["color"]
        pl.shadow_soft_size = 0.3
        ob = bpy.data.objects.new("lamp", pl)
        ob.location = lamp["loc"]
        bpy.context.scene.collection.objects.link(ob)


def bounds(objs: list[Any]) -> tuple[Vector, float]:
    """World-space bounding-sphere (centre, radius) of the meshes under the given roots."""
    pts: list[Vector] = []
    for root in objs:
        for ob in [root, *root.children_recursive]:
            if ob.type in ("MESH", "CURVE", "FONT"):
                pts.extend(ob.matrix_world @ Vector(c) for c in ob.bound_box)
    lo = Vector((min(p.x for p in pts), min(p.y for p in pts), min(p.z for p in pts)))
    hi = Vector((max(p.x for p in pts), max(p.y for p in pts), max(p.z for p in pts)))
    return (lo + hi) / 2, max((hi - lo).length / 2, 0.05)


def frame_distance(view: P, centre: Vector, radius: float) -> tuple[float, float]:
    """(slant distance, lens mm) giving the wanted fill, within the phone's lens range."""
    frac = math.sqrt(view["fill"])  # linear share of the frame the bounding sphere spans
    min_d = max(0.0, centre.z - view["eye_h"]) * 1.02 + 0.3
    dist = max(view["dist"], min_d)
    lens = frac * 36.0 * dist / (2 * radius)
    lo, hi = view.get("min_lens", 24.0), view.get("max_lens", 300.0)
    if lens > hi or lens < lo:
        lens = max(lo, min(hi, lens))
        dist = max(min_d, 2 * radius * lens / (36.0 * frac))
    return dist, lens


def build_camera(view: P, centre: Vector, radius: float) -> P:
    """Phone camera aimed up at the subject, distance/focal length chosen for the wanted fill."""
    dist, lens = frame_distance(view, centre, radius)
    dh = centre.z - view["eye_h"]
    horiz = math.sqrt(max(dist * dist - dh * dh, (0.18 * abs(dh)) ** 2))
    az = math.radians(view["azimuth"])
    eye = Vector((centre.x + horiz * math.cos(az), centre.y + horiz * math.sin(az), view["eye_h"]))
    dist = (centre - eye).length
    cam_data = bpy.data.cameras.new("phone")
    cam_data.lens = lens
    cam_data.sensor_width = 36.0
    cam_data.sensor_fit = "HORIZONTAL"
    cam_data.clip_start = 0.05
    cam = bpy.data.objects.new("phone", cam_data)
    bpy.context.scene.collection.objects.link(cam)
    cam.location = eye
    # aim at the subject, shifted so it is not always dead centre, then roll
    look = (centre - eye).to_track_quat("-Z", "Y").to_euler()
    half_fov = math.atan(18.0 / lens)
    look.x += view["shift_y"] * half_fov
    look.z += view["shift_x"] * half_fov
    cam.rotation_euler = look
    cam.rotation_euler.rotate_axis("Z", math.radians(view["roll"]))
    bpy.context.scene.camera = cam
    fill = min(1.0, (2 * radius / dist * lens / 36.0) ** 2)
    return {"lens_mm": round(lens, 2), "distance_m": round(dist, 2), "fill": round(fill, 4)}


def configure_render(r: P, img: P) -> None:
    """Cycles on CPU, no denoiser, fixed seed, Filmic colour."""
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    cyc = scene.cycles
    cyc.device = "CPU"
    cyc.samples = r["samples"]
    cyc.use_denoising = False
    # most of a street photo is flat sky or wall: adaptive sampling spends the rays on the camera
    cyc.use_adaptive_sampling = r.get("adaptive", 0.0) > 0
    cyc.adaptive_threshold = r.get("adaptive", 0.0)
    cyc.adaptive_min_samples = max(4, r["samples"] // 4)
    cyc.seed = img["render_seed"]
    cyc.max_bounces = r.get("bounces", 1)
    cyc.diffuse_bounces = 1
    cyc.glossy_bounces = 1
    cyc.transmission_bounces = 1
    cyc.volume_bounces = 0
    cyc.transparent_max_bounces = 4
    cyc.use_fast_gi = r.get("fast_gi", True)
    if scene.world is not None:
        scene.world.light_settings.distance = 5.0
    cyc.sample_clamp_direct = 8.0
    cyc.sample_clamp_indirect = 3.0
    cyc.caustics_reflective = False
    cyc.caustics_refractive = False
    cyc.blur_glossy = 1.0
    scene.render.threads_mode = "FIXED" if r.get("threads") else "AUTO"
    if r.get("threads"):
        scene.render.threads = r["threads"]
    scene.render.resolution_x = r["width"]
    scene.render.resolution_y = r["height"]
    scene.render.resolution_percentage = 100
    scene.render.film_transparent = bool(img.get("transparent", False))
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGBA" if img.get("transparent") else "RGB"
    scene.render.image_settings.color_depth = "8"
    scene.view_settings.view_transform = "Filmic"
    scene.view_settings.look = img["light"].get("look", "Medium High Contrast")
    scene.view_settings.exposure = img["light"].get("exposure", 0.0)


# --------------------------------------------------------------------------------------------
# 2D boxes of the devices in the rendered frame
# --------------------------------------------------------------------------------------------


def frame_points(root: Any, scene: Any, cam: Any) -> list[Any]:
    """Camera-view coordinates (x, y in 0..1 from the bottom left, z = depth) of every vertex of
    an assembly, modifiers (bevels) and text included."""
    depsgraph = bpy.context.evaluated_depsgraph_get()
    pts = []
    for ob in [root, *root.children_recursive]:
        if ob.type not in ("MESH", "CURVE", "FONT"):
            continue
        ob_eval = ob.evaluated_get(depsgraph)
        mesh = ob_eval.to_mesh()
        mw = ob_eval.matrix_world
        pts += [world_to_camera_view(scene, cam, mw @ v.co) for v in mesh.vertices]
        ob_eval.to_mesh_clear()
    return pts


def pixel_box(pts: list[Any], width: int, height: int, near: float) -> P | None:
    """The box of projected points in pixels (y down), clipped to the frame, with the share of the
    unclipped box inside it; None when nothing is in front of the camera and inside the frame.
    Points behind the near clip plane are ignored."""
    front = [p for p in pts if p.z > near]
    if not front:
        return None
    x0, x1 = min(p.x for p in front) * width, max(p.x for p in front) * width
    y0, y1 = (1 - max(p.y for p in front)) * height, (1 - min(p.y for p in front)) * height
    cx0, cy0, cx1, cy1 = max(x0, 0.0), max(y0, 0.0), min(x1, float(width)), min(y1, float(height))
    if cx1 <= cx0 or cy1 <= cy0:
        return None
    area = max((x1 - x0) * (y1 - y0), 1e-9)
    visible = min(1.0, (cx1 - cx0) * (cy1 - cy0) / area)
    return {"box": [round(v, 2) for v in (cx0, cy0, cx1, cy1)], "visible": round(visible, 4)}


def device_boxes(devices: list[tuple[Any, Any, str]], r: P) -> list[P]:
    """``{"device", "kind", "box", "visible"}`` of each device seen by the scene camera.

    ``devices`` holds (index in ``img["devices"]`` or None for a backdrop light, assembly root,
    kind). Boxes are in pixels of the rendered frame, (0, 0) at the top left.
    """
    scene = bpy.context.scene
    cam = scene.camera
    out = []
    for index, root, kind in devices:
        box = pixel_box(frame_points(root, scene, cam), r["width"], r["height"], cam.data.clip_start)
        if box is not None:
            out.append({"device": index, "kind": kind, **box})
    return out


# --------------------------------------------------------------------------------------------
# one image
# --------------------------------------------------------------------------------------------


def render_image(r: P, img: P, builders: P) -> P:
    """Build the scene for one image, render it to ``img['out']`` and return its facts (framing,
    frame size and device boxes; also written to ``img['facts']`` before rendering)."""
    reset_scene()
    m = Mats(img["materials"])
    build_world(img["light"])
    build_lights(img["light"])
    build_mount(m, img["mount"])
    subject = []
    devices: list[tuple[Any, Any, str]] = []
    for i, dev in enumerate(img["devices"]):
        ob = builder(builders, dev["kind"])(m, dev)
        place(ob, img["mount"], dev)
        devices.append((i, ob, dev["kind"]))
        if dev.get("subject"):
            subject.append(ob)
    if not img.get("transparent"):
        devices += [(None, ob, "street_light") for ob in build_backdrop(m, img["backdrop"])]
    bpy.context.view_layer.update()
    centre, radius = bounds(subject)
    facts = build_camera(img["view"], centre, radius)
    bpy.context.view_layer.update()
    build_occluders(m, img.get("occluders", []), bpy.context.scene.camera, centre)
    configure_render(r, img)  # sets the frame size the boxes are measured in
    bpy.context.view_layer.update()
    facts.update(width=r["width"], height=r["height"], boxes=device_boxes(devices, r))
    if img.get("facts"):  # written before the frame, so it exists when "Saved:" is printed
        with open(img["facts"], "w", encoding="utf-8") as fh:
            json.dump(facts, fh, sort_keys=True)
    bpy.context.scene.render.filepath = img["out"]
    t0 = time.perf_counter()
    bpy.ops.render.render(write_still=True)
    facts["render_s"] = round(time.perf_counter() - t0, 3)
    return facts


def main() -> int:
    """Render every image of the job given after ``--`` and write ``<job>.done.json``."""
    argv = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else []
    if not argv:
        print("usage: blender -b -P blender_scene.py -- job.json", file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as fh:
        job = json.load(fh)
    results = {}
    for img in job["images"]:
        t0 = time.perf_counter()
        facts = render_image(job["render"], img, job["builders"])
        facts["seconds"] = round(time.perf_counter() - t0, 3)
        results[img["out"]] = facts
    with open(argv[0] + ".done.json", "w", encoding="utf-8") as fh:
        json.dump(results, fh)
    return 0


if __name__ == "__main__":
    code = main()
    if code:
        sys.exit(code)
