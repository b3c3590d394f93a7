"""Does the app's OIDN reproduce Blender's own denoiser, and does a restored Blender EXR keep every pass?

Two steps, because bpy (``pip install bpy==5.0.1``, Python 3.11, ~1 GB) must never be a dependency of the app or of
its tests: the first runs in a Python that has bpy, the second in the app's environment.

    /path/to/bpy-python bench/blender_oidn.py render OUT      # Cycles renders with bpy (numpy + bpy needed)
    .venv/bin/python bench/blender_oidn.py compare OUT        # our OIDN vs Blender's; restores both layouts
    /path/to/bpy-python bench/blender_oidn.py reopen OUT      # Blender opens the restored files: every pass there?
    .venv/bin/python bench/blender_oidn.py prefilters OUT     # each prefilter on the Cornell box (no bpy needed)

``render`` makes a small Cycles scene (the default cube, a checker floor, a mirror-like sphere; 256 x 192, 16 spp,
seed 7) and writes it three times from one render: ``noisy_multipart.exr`` (Blender 5's default layout) and
``noisy_interleaved.exr`` (one part) with denoising off and the Denoising Data passes stored, and
``blender_denoised.exr`` with Blender's OIDN on (prefilter Accurate, quality High, CPU) whose ``Noisy Image`` pass
holds the same noisy colour, and ``reference.exr`` (2048 spp, no denoising). ``compare`` denoises the noisy colour
with the app's ``oidn-aov`` engine through the restore job (the path the CLI and the window take), prints the relMSE
(``engine.metrics.relmse``) between ours and Blender's for every prefilter (and of both against the reference), and
writes ``restored_multipart.exr`` / ``restored_interleaved.exr``, checking that every channel other than the colour
is byte-identical. ``reopen`` loads the originals and the restored files in
Blender and compares the passes its compositor offers. Results go to OUT/blender_oidn.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

WIDTH, HEIGHT, SAMPLES, SEED = 256, 192, 16, 7
REFERENCE_SAMPLES = 2048


def _scene():
    import bpy

    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = SAMPLES
    scene.cycles.seed = SEED
    scene.cycles.use_adaptive_sampling = False
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = WIDTH, HEIGHT, 100
    bpy.ops.mesh.primitive_plane_add(size=12, location=(0, 0, -1))
    floor = bpy.context.object
    material = bpy.data.materials.new("floor")
    material.use_nodes = True
    tree = material.node_tree
    checker = tree.nodes.new("ShaderNodeTexChecker")
    checker.inputs["Scale"].default_value = 8
    tree.links.new(checker.outputs["Color"], tree.nodes["Principled BSDF"].inputs["Base Color"])
    floor.data.materials.append(material)
    bpy.ops.mesh.primitive_uv_sphere_add(radius=0.8, location=(2.2, 0.5, -0.2))
    gloss = bpy.data.materials.new("gloss")
    gloss.use_nodes = True
    principled = gloss.node_tree.nodes["Principled BSDF"]
    principled.inputs["Metallic"].default_value = 1.0
    principled.inputs["Roughness"].default_value = 0.15
    bpy.context.object.data.materials.append(gloss)
    layer = scene.view_layers[0]
    layer.cycles.denoising_store_passes = True
    layer.use_pass_normal = layer.use_pass_z = layer.use_pass_diffuse_color = layer.use_pass_vector = True
    settings = scene.render.image_settings
    settings.media_type = "MULTI_LAYER_IMAGE"
    settings.file_format = "OPEN_EXR_MULTILAYER"
    settings.color_depth = "32"
    return scene


def render(out: Path) -> None:
    import bpy

    out.mkdir(parents=True, exist_ok=True)
    scene = _scene()
    scene.cycles.use_denoising = False
    scene.render.filepath = str(out / "noisy_multipart.exr")
    bpy.ops.render.render(write_still=True)
    scene.render.image_settings.use_exr_interleave = True
    scene.render.filepath = str(out / "noisy_interleaved.exr")
    bpy.ops.render.render(write_still=True)
    scene.render.image_settings.use_exr_interleave = False
    scene.cycles.use_denoising = True
    scene.cycles.denoiser = "OPENIMAGEDENOISE"
    scene.cycles.denoising_prefilter = "ACCURATE"
    scene.cycles.denoising_quality = "HIGH"
    scene.cycles.denoising_input_passes = "RGB_ALBEDO_NORMAL"
    if hasattr(scene.cycles, "denoising_use_gpu"):
        scene.cycles.denoising_use_gpu = False
    scene.render.filepath = str(out / "blender_denoised.exr")
    bpy.ops.render.render(write_still=True)
    # A high-sample reference of the same frame, to compare both denoisers with the truth, not only each other.
    scene.cycles.use_denoising = False
    scene.cycles.samples = REFERENCE_SAMPLES
    scene.render.filepath = str(out / "reference.exr")
    bpy.ops.render.render(write_still=True)
    print(f"rendered {WIDTH} x {HEIGHT}, {SAMPLES} spp into {out}")


def compare(out: Path) -> dict:
    import numpy as np
    import OpenEXR

    from engine.imageio import read_image, write_image
    from engine.jobs import run_job
    from engine.metrics import relmse
    from engine.models.registry import ModelRegistry
    from engine.restore import restore_job

    denoised = read_image(out / "blender_denoised.exr")
    blender = np.array(denoised.pixels)
    noisy_layer = next(name for name in denoised.layers if name.endswith("Noisy Image"))
    noisy = denoised.layers[noisy_layer][:, :, :3]
    entry = ModelRegistry().get("oidn-aov")
    results: dict = {"size": [WIDTH, HEIGHT], "spp": SAMPLES, "relmse_noisy_vs_blender": relmse(noisy, blender)}
    source = read_image(out / "noisy_interleaved.exr")
    np.testing.assert_array_equal(source.pixels, noisy)  # the same samples in both renders
    results["roles"] = {role: value["layer"] + (f" ({value['note']})" if value.get("note") else "")
                        for role, value in source.meta.extra["aov_roles"].items()}
    reference = np.array(read_image(out / "reference.exr").pixels) if (out / "reference.exr").exists() else None
    if reference is not None:
        results["reference_spp"] = REFERENCE_SAMPLES
        results["relmse_noisy_vs_reference"] = relmse(noisy, reference)
        results["relmse_blender_vs_reference"] = relmse(blender, reference)
    for prefilter in ("accurate", "fast", "none"):
        result = run_job(restore_job(source, entry, {"prefilter": prefilter, "quality": "high"}), lambda p: None)
        ours = np.array(result.image.pixels)
        results[f"relmse_ours_{prefilter}_vs_blender"] = relmse(ours, blender)
        if reference is not None:
            results[f"relmse_ours_{prefilter}_vs_reference"] = relmse(ours, reference)
            results[f"ratio_ours_{prefilter}_to_blender_vs_reference"] = (relmse(ours, reference)
                                                                         / results["relmse_blender_vs_reference"])
    # Blender's inputs exactly (its camera-space Denoising Normal, whole frame, OIDN's own exposure).
    from engine.models.oidn import oidn_denoise

    camera_normal = source.layers["ViewLayer.Denoising Normal"]
    exact = oidn_denoise(noisy, source.layers["albedo"], camera_normal, input_scale=None, prefilter="accurate")
    results["relmse_oidn_direct_camera_normal_vs_blender"] = relmse(exact, blender)
    # Restoring both layouts: every pass but the colour comes back byte-identical, in the same parts.
    for layout in ("multipart", "interleaved"):
        image = read_image(out / f"noisy_{layout}.exr")
        restored = run_job(restore_job(image, entry, {}), lambda p: None).image
        target = out / f"restored_{layout}.exr"
        write_image(target, restored)
        before = OpenEXR.File(str(out / f"noisy_{layout}.exr"), separate_channels=True)
        after = OpenEXR.File(str(target), separate_channels=True)
        assert [p.name() for p in before.parts] == [p.name() for p in after.parts], layout
        changed = []
        for part_before, part_after in zip(before.parts, after.parts, strict=True):
            assert set(part_before.channels) == set(part_after.channels), layout
            changed += [name for name, channel in part_before.channels.items()
                        if channel.pixels.tobytes() != part_after.channels[name].pixels.tobytes()]
        results[f"{layout}_changed_channels"] = sorted(changed)
        results[f"{layout}_parts"] = len(after.parts)
    return results


def prefilters(out: Path) -> dict:
    """The app's OIDN + AOVs with each prefilter on the Cornell box (../shared/bench/renders/cbox256, 1-64 spp,
    4096-spp reference), through the restore job: what the Blender way changes on the app's own benchmark."""
    import numpy as np

    from engine.imageio import read_image
    from engine.jobs import run_job
    from engine.metrics import relmse
    from engine.models.registry import ModelRegistry
    from engine.restore import restore_job

    root = Path(__file__).resolve().parent.parent
    shared = [root.parent / "shared", root.parent.parent / "shared"]
    cbox = next((p for p in shared if p.is_dir()), shared[0])
    cbox = cbox / "bench" / "renders" / "cbox256"  # ../shared from the main checkout, ../../shared from a worktree
    reference = np.array(read_image(cbox / "cbox_256_ref_spp04096_color.exr").pixels)
    entry = ModelRegistry().get("oidn-aov")
    results: dict = {}
    for spp in (1, 4, 16, 64):
        image = read_image(cbox / f"cbox_256_spp{spp:05d}_color.exr")
        for prefilter in ("accurate", "fast", "none"):
            result = run_job(restore_job(image, entry, {"prefilter": prefilter}), lambda p: None)
            results[f"cbox_spp{spp}_relmse_{prefilter}"] = relmse(np.array(result.image.pixels), reference)
    return results


def reopen(out: Path) -> dict:
    import bpy

    def passes(path: Path) -> list[str]:
        image = bpy.data.images.load(str(path))
        tree = bpy.data.node_groups.new("probe", "CompositorNodeTree")
        node = tree.nodes.new("CompositorNodeImage")
        node.image = image
        return [output.name for output in node.outputs if getattr(output, "enabled", True)]

    results = {}
    for layout in ("multipart", "interleaved"):
        original, restored = passes(out / f"noisy_{layout}.exr"), passes(out / f"restored_{layout}.exr")
        results[f"{layout}_blender_passes"] = restored
        results[f"{layout}_all_passes_survive"] = original == restored
    return results


def main() -> None:
    step, out = sys.argv[1], Path(sys.argv[2])
    report = out / "blender_oidn.json"
    data = json.loads(report.read_text()) if report.exists() else {}
    if step == "render":
        render(out)
        return
    data.update({"compare": compare, "prefilters": prefilters, "reopen": reopen}[step](out))
    report.write_text(json.dumps(data, indent=2))
    print(json.dumps(data, indent=2))


if __name__ == "__main__":
    main()
