"""``sam2-onnx`` command line: parses options, calls library functions, maps errors to exits.

Every failure a user can fix is a :class:`~exporter.core.errors.Sam2OnnxError`: one line on stderr
and its exit code (1 bad input, 3 integrity, 4 download, 5 parity failed, 6 release refused;
click uses 2 for bad usage). Any other exception that escapes a command is one line too, with
exit 70; ``--debug`` shows the traceback of either.
torch and sam2 are imported inside the commands that need them, so ``--help``, ``variants``
and ``fetch`` start fast.
"""

from __future__ import annotations

from pathlib import Path

import click

from .core.contract import DEFAULT_PROFILE, PROFILES, parse_static_shapes
from .core.errors import CheckpointError, Sam2OnnxError, one_line, refuse_overwrite

UNEXPECTED_EXIT = 70  # EX_SOFTWARE: an error no Sam2OnnxError describes (exits 1-6 are the ones users can fix)


class _Group(click.Group):
    """Turns Sam2OnnxError into a one-line message and its exit code (unless --debug)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except Sam2OnnxError as exc:
            if ctx.params.get("debug"):
                raise
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:  # a library (torch, sam2, onnxruntime, a decoder) or a bug of ours
            if ctx.params.get("debug"):
                raise
            command = ctx.invoked_subcommand or "sam2-onnx"
            click.echo(
                f"error: {command}: unexpected {one_line(exc, 300)} (rerun with --debug for the traceback)", err=True
            )
            ctx.exit(UNEXPECTED_EXIT)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.version_option(package_name="sam2-onnx-exporter")
def cli(debug: bool) -> None:
    """Export SAM 2 / SAM 2.1 to ONNX, prove parity with PyTorch, run it without torch."""


def _human_bytes(n: int) -> str:
    """Decimal units, as download pages quote checkpoint sizes."""
    if n < 1000:
        return f"{n} B"
    for unit in ("KB", "MB", "GB"):
        n /= 1000
        if n < 1000 or unit == "GB":
            return f"{n:.1f} {unit}"


@cli.command()
@click.option(
    "--lock",
    "lock_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Lock file to read (default: checkpoints.lock in the repo).",
)
def variants(lock_path: Path | None) -> None:
    """List the variants: name, alias, parameters, checkpoint file and size."""
    from .checkpoints.lock import read_lock
    from .core.variants import all_variants

    lock = read_lock(lock_path)
    rows = [("variant", "alias", "parameters", "checkpoint", "size", "sha256")]
    for v in all_variants():
        entry = lock.get(v.checkpoint)
        rows.append(
            (
                v.name,
                ",".join(v.aliases) or "-",
                f"{v.parameters / 1e6:.1f} M",
                entry.filename if entry else "(no lock entry)",
                _human_bytes(entry.bytes) if entry and entry.bytes else "unknown",
                entry.sha256[:12] if entry and entry.pinned else "unpinned",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        if i == 0:
            click.echo("  ".join("-" * w for w in widths))


@cli.command()
@click.argument("variant")
@click.option(
    "--dest",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("checkpoints"),
    show_default=True,
    help="Directory to download into.",
)
@click.option(
    "--base-url",
    envvar="SAM2_ONNX_BASE_URL",
    show_envvar=True,
    help="Mirror to download from; the lock's file name is appended to it.",
)
@click.option("--pin", is_flag=True, help="Accept an entry with no digest and record what was downloaded in the lock.")
@click.option("--force", is_flag=True, help="Replace an existing file that does not match the lock.")
@click.option(
    "--lock",
    "lock_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Lock file to use (default: checkpoints.lock in the repo).",
)
@click.option(
    "--retries",
    type=click.IntRange(0, 20),
    default=3,
    show_default=True,
    help="Resume attempts after a dropped connection.",
)
def fetch(
    variant: str, dest: Path, base_url: str | None, pin: bool, force: bool, lock_path: Path | None, retries: int
) -> None:
    """Download VARIANT's official checkpoint, resuming, verifying size and sha256.

    VARIANT is a full name (sam2.1_hiera_tiny, sam2_hiera_large, ...) or an alias
    (tiny, small, base_plus, large mean SAM 2.1).
    """
    from .checkpoints.fetch import fetch as do_fetch

    result = do_fetch(
        variant, dest, base_url=base_url, pin=pin, force=force, lock_path=lock_path, progress=True, retries=retries
    )
    verb = "downloaded" if result.downloaded else "already present, verified"
    if result.resumed_from:
        verb += f" (resumed at {result.resumed_from} bytes)"
    click.echo(f"{result.path}: {verb}, {result.bytes} bytes, sha256 {result.sha256}")
    if result.pinned:
        click.echo(f"pinned {result.sha256} ({result.bytes} bytes) into {lock_path or 'checkpoints.lock'}")


@cli.command(name="inspect")
@click.argument("checkpoint", type=click.Path(path_type=Path))
def inspect_cmd(checkpoint: Path) -> None:
    """Detect CHECKPOINT's variant; print its parameter count and digests."""
    from .checkpoints.loading import inspect_checkpoint

    info = inspect_checkpoint(checkpoint)
    click.echo(f"file          {info.path} ({info.file_bytes} bytes)")
    click.echo(f"sha256        {info.file_sha256}")
    click.echo(f"variant       {info.variant.name if info.variant else 'unknown'}")
    click.echo(f"parameters    {info.parameters:,}")
    click.echo(f"tensors       {info.tensors} ({info.elements:,} elements incl. buffers)")
    click.echo(f"weights sha   {info.state_dict_sha256}  (state-dict digest)")
    if info.problem:
        raise CheckpointError(f"{checkpoint}: does not load strictly: {info.problem}")


@cli.command(name="random-checkpoint")
@click.argument("variant")
@click.option("--seed", type=int, default=0, show_default=True, help="torch.manual_seed before sam2's init.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the official-format checkpoint ({'model': state_dict}).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def random_checkpoint(variant: str, seed: int, out: Path, force: bool) -> None:
    """Build VARIANT with seeded random weights and save it as an official checkpoint.

    Official checkpoints cannot be downloaded everywhere (CI, air-gapped machines); this makes
    a stand-in with the exact official keys and shapes. Same seed -> byte-identical file.
    """
    from .checkpoints.loading import random_model, save_checkpoint
    from .core.variants import resolve

    v = resolve(variant)
    refuse_overwrite(out, force)  # before the slow build; save_checkpoint checks again
    model, source = random_model(v, seed)
    digest = save_checkpoint(model, out, force=force, random_seed=seed)
    click.echo(f"{out}: {v.name}, random weights seed {seed}")
    click.echo(f"sha256        {digest}")
    click.echo(f"weights sha   {source.state_dict_sha256}  (state-dict digest)")


@cli.command()
@click.argument("variant")
@click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Official checkpoint to export (see `sam2-onnx fetch`).",
)
@click.option(
    "--random-weights",
    is_flag=True,
    help="Export sam2's seeded random initialisation instead (testing without checkpoints).",
)
@click.option("--seed", type=int, help="Seed for --random-weights.  [default: 0]")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("artifacts"),
    show_default=True,
    help="Writes OUT/<full variant name>/.",
)
@click.option("--opset", type=int, help="ONNX opset, 16 to 20.  [default: the variant's, 17]")
@click.option("--no-simplify", is_flag=True, help="Skip onnxsim (keep the traced graphs as they are).")
@click.option(
    "--plain-graphs",
    is_flag=True,
    help="Trace sam2's modules as written, without the faster export forms (same math; for A/B "
    "checks, and faster decoding of prompts with more than 9 points).",
)
@click.option(
    "--precision",
    default="fp32",
    show_default=True,
    metavar="LIST",
    help="Comma-separated subset of fp32,fp16,int8; fp32 is always exported (the source).",
)
@click.option(
    "--calibration-images",
    type=click.Path(path_type=Path),
    help="Folder of photos for static INT8 calibration.  [default: the bundled photos]",
)
@click.option(
    "--profile",
    type=click.Choice(list(PROFILES)),
    help=f"Whose I/O contract the graphs follow (docs/io-contract.md); other than the default, "
    f"writes OUT/<variant>-<profile>/, fp32 only.  [default: {DEFAULT_PROFILE}; SAM 1: sam1]",
)
@click.option(
    "--static-shapes",
    metavar="L,N",
    help="Fix every dim for ONNX Runtime Mobile (NNAPI / CoreML / XNNPACK): L prompts of N points "
    "per decoder call, one image per encoder call; writes OUT/<variant>-static-LxN/, fp32 only "
    "(docs/mobile.md).",
)
@click.option(
    "--external-data",
    is_flag=True,
    help="Keep each graph's weights in <file>.data beside it (ONNX external data), fp32 only; "
    "always so for a graph over protobuf's 2 GB (ViT-H's encoder).",
)
@click.option(
    "--no-video",
    is_flag=True,
    help="Skip the video tracking graphs (memory_attention.onnx ...; SAM 2, default profile only).",
)
@click.option("--force", is_flag=True, help="Replace an existing output folder.")
def export(
    variant: str,
    checkpoint: Path | None,
    random_weights: bool,
    seed: int | None,
    out: Path,
    opset: int | None,
    no_simplify: bool,
    plain_graphs: bool,
    precision: str,
    calibration_images: Path | None,
    profile: str,
    static_shapes: str | None,
    external_data: bool,
    no_video: bool,
    force: bool,
) -> None:
    """Export VARIANT's encoder and decoder graphs, checked, simplified and verified.

    Writes OUT/<variant>/encoder.onnx, decoder.onnx and manifest.json (alias `tiny` writes
    sam2.1_hiera_tiny/), plus encoder.fp16.onnx ... for each --precision asked for, each
    checked against the FP32 graph, and for SAM 2 the video graphs (docs/video.md). Built in a
    hidden staging folder and renamed into place.
    """
    from .core.variants import resolve
    from .export.pipeline import export_variant

    if (checkpoint is None) == (not random_weights):
        raise click.UsageError("give exactly one of --checkpoint PATH or --random-weights")
    if seed is not None and not random_weights:
        raise click.UsageError("--seed only applies to --random-weights")
    result = export_variant(
        resolve(variant),
        out,
        checkpoint=checkpoint,
        seed=(seed or 0) if random_weights else None,
        opset=opset,
        simplify=not no_simplify,
        fast=not plain_graphs,
        force=force,
        precisions=precision.split(","),
        calibration_images=calibration_images,
        profile=profile,
        static_shapes=None if static_shapes is None else parse_static_shapes(static_shapes),
        external_data=external_data,
        video=not no_video,
    )
    click.echo(f"{result.folder}: exported in {sum(result.seconds.values()):.1f} s")
    video = result.manifest.get("video", {}).get("files", {})
    for name, entry in {**result.manifest["files"], **video}.items():
        click.echo(f"  {name:<22} {entry['bytes'] / 1e6:8.1f} MB  sha256 {entry['sha256']}")
        if "external_data" in entry:  # its weights beside it
            data = entry["external_data"]
            click.echo(f"  {data['file']:<22} {data['bytes'] / 1e6:8.1f} MB  sha256 {data['sha256']}")


def _parse_point(text: str) -> tuple[float, float, int]:
    xy, _, label = text.partition(":")
    try:
        x, y = (float(v) for v in xy.split(","))
        lab = int(label) if label else 1
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected X,Y or X,Y:LABEL (LABEL 1 foreground, 0 background)") from None
    return x, y, lab


def _parse_box(text: str) -> tuple[float, ...]:
    try:
        box = tuple(float(v) for v in text.split(","))
    except ValueError:
        box = ()
    if len(box) != 4:
        raise click.BadParameter(f"{text!r}: expected X0,Y0,X1,Y1")
    return box


@cli.command()
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.argument("image", type=click.Path(path_type=Path))
@click.option(
    "--point",
    "points",
    multiple=True,
    metavar="X,Y[:LABEL]",
    callback=lambda _c, _p, v: [_parse_point(t) for t in v],
    help="A click in image pixels; LABEL 1 foreground (default), 0 background. Repeatable.",
)
@click.option(
    "--box",
    "boxes",
    multiple=True,
    metavar="X0,Y0,X1,Y1",
    callback=lambda _c, _p, v: [_parse_box(t) for t in v],
    help="A box in image pixels. Repeatable: several boxes (without points) are decoded as a batch.",
)
@click.option("--single-mask", is_flag=True, help="One mask per prompt (multimask_output=False).")
@click.option("--precision", default="fp32", show_default=True, help="Which exported graphs to use.")
@click.option("--threads", type=int, help="onnxruntime intra-op threads (default: all cores).")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder to write mask PNGs, overlay.png and result.json into.",
)
@click.option("--force", is_flag=True, help="Replace an existing output folder.")
def predict(
    model_dir: Path,
    image: Path,
    points,
    boxes,
    single_mask: bool,
    precision: str,
    threads: int | None,
    out: Path,
    force: bool,
) -> None:
    """Segment IMAGE with the exported model in MODEL_DIR (no torch involved).

    Prints the scores; writes one PNG per mask, an overlay of the best mask per prompt with
    the prompts drawn, and result.json with scores and timings.
    """
    from .runtime import SAM2OnnxPredictor
    from .runtime.inputs import read_image
    from .runtime.outputs import predict_to_files

    if not points and not boxes:
        raise click.UsageError("give at least one --point or --box")
    refuse_overwrite(out, force)
    rgb = read_image(image)
    predictor = SAM2OnnxPredictor(model_dir, precision=precision, threads=threads)
    xy = [p[:2] for p in points] or None
    labels = [p[2] for p in points] or None
    summary = predict_to_files(
        predictor,
        rgb,
        out,
        points=xy,
        labels=labels,
        boxes=boxes or None,
        multimask_output=not single_mask,
        force=force,
        source=str(image),
    )
    for p, (scores, best) in enumerate(zip(summary["scores"], summary["best"])):
        text = "  ".join(f"{'*' if c == best else ' '}{s:.4f}" for c, s in enumerate(scores))
        click.echo(f"prompt {p}: scores {text}   (* best)")
    t = summary["timings_ms"]
    click.echo(f"encoder {t['encoder']:.0f} ms, decoder + upsampling {t['decoder']:.0f} ms -> {out}/")


@cli.command()
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="0: any free port.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--precision", default="fp32", show_default=True, help="Which exported graphs the page loads.")
@click.option(
    "--format",
    "graph_format",
    type=click.Choice(["onnx", "ort"]),
    default="onnx",
    show_default=True,
    help="Graph files the page loads: .onnx, or the .ort copies of a release folder.",
)
@click.option("--verbose", is_flag=True, help="Log every request.")
def serve(model_dir: Path, port: int, host: str, precision: str, graph_format: str, verbose: bool) -> None:
    """Serve a click-to-segment page for MODEL_DIR; inference runs in the browser.

    Open the printed address, open an image, click points or drag a box. onnxruntime-web runs
    the encoder on WebGPU when the browser has an adapter, else on multi-threaded wasm, and the
    decoder on wasm. A release folder is served whole (every file SHA256SUMS lists). Ctrl+C
    or SIGTERM stops the server.
    """
    import signal

    from .web.server import make_server

    server = make_server(model_dir, precision, host, port, verbose, graph_format)

    def stop(signum, frame):
        raise KeyboardInterrupt

    # Set explicitly: a process started in the background inherits SIGINT ignored, and
    # SIGTERM (kill, docker stop, systemd) should stop the server as cleanly as Ctrl+C.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    click.echo(f"serving {model_dir} ({precision}) at {server.url}  (Ctrl+C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopped")
    finally:
        server.server_close()


@cli.command()
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.argument("video", type=click.Path(path_type=Path))
@click.option(
    "--point",
    "points",
    multiple=True,
    metavar="F:OBJ:X,Y[:LABEL]",
    help="A click on frame F for object OBJ in video pixels; LABEL 1 foreground (default), 0 background. "
    "Repeatable (several on one frame and object form one prompt).",
)
@click.option(
    "--box",
    "boxes",
    multiple=True,
    metavar="F:OBJ:X0,Y0,X1,Y1",
    help="A box on frame F for object OBJ in video pixels. Repeatable.",
)
@click.option(
    "--reverse",
    is_flag=True,
    help="Track backward, from the last prompted frame to frame 0.  [default: forward from the first]",
)
@click.option("--precision", default="fp32", show_default=True, help="Which exported encoder to use.")
@click.option("--threads", type=int, help="onnxruntime intra-op threads (default: all cores).")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder to write masks/<obj>/<frame>.png, overlay.gif and track.json into.",
)
@click.option("--force", is_flag=True, help="Replace an existing output folder.")
def track(
    model_dir: Path,
    video: Path,
    points,
    boxes,
    reverse: bool,
    precision: str,
    threads: int | None,
    out: Path,
    force: bool,
) -> None:
    """Track objects through VIDEO (a folder of JPEG frames named by index, or a video file
    such as an MP4) with MODEL_DIR's video graphs (no torch involved).

    Writes one mask PNG per object and frame, an overlay clip (GIF) and track.json.
    """
    from tqdm import tqdm

    from .runtime.video_outputs import parse_prompts, track_to_files
    from .runtime.video_predictor import SAM2OnnxVideoPredictor

    prompts = parse_prompts(list(points), list(boxes))  # InputError: one line, exit 1
    refuse_overwrite(out, force)
    predictor = SAM2OnnxVideoPredictor(model_dir, precision=precision, threads=threads)
    summary = track_to_files(
        predictor,
        video,
        prompts,
        out,
        reverse=reverse,
        force=force,
        progress=lambda total: tqdm(total=total, unit="frame", desc="track", leave=False),
        source=str(video),
    )
    for obj, frames in summary["objects"].items():
        seen = sum(1 for f in frames.values() if f["area"])
        click.echo(f"object {obj}: in {seen} of {summary['tracked_frames']} tracked frames")
    click.echo(
        f"{summary['tracked_frames']} frames ({summary['direction']} from frame {summary['start_frame']}) "
        f"in {summary['seconds']:.1f} s -> {out}/"
    )


def _load_grids(path: Path | None):
    """``--point-grids FILE``: a .npy [N, 2] array (one layer) or a .json list of [N, 2] lists."""
    if path is None:
        return None
    import json

    import numpy as np

    from .core.errors import InputError

    try:
        if path.suffix == ".npy":
            return [np.load(path, allow_pickle=False)]
        grids = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable .npy array or JSON list of point grids ({exc})") from None
    if not isinstance(grids, list) or not grids or not isinstance(grids[0], list) or not grids[0]:
        raise InputError(f"{path}: expected a JSON list of [N, 2] point lists, one per crop layer")
    return grids if isinstance(grids[0][0], list) else [grids]


@cli.command()
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.argument("image", type=click.Path(path_type=Path))
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="JSON file for the mask records."
)
@click.option(
    "--overlay",
    "overlay_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also draw every mask in its own colour over the image into this PNG.",
)
@click.option(
    "--points-per-side",
    type=int,
    help="Grid of points_per_side^2 single-click prompts.  [default: 32, none with --point-grids]",
)
@click.option(
    "--point-grids",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Explicit points in [0, 1]: .npy [N, 2], or .json list of [N, 2] lists, one per crop layer.",
)
@click.option("--points-per-batch", type=int, default=64, show_default=True)
@click.option("--pred-iou-thresh", type=float, help="[default: 0.8; SAM 1 folders: 0.88]")
@click.option("--stability-score-thresh", type=float, default=0.95, show_default=True)
@click.option("--stability-score-offset", type=float, default=1.0, show_default=True)
@click.option("--mask-threshold", type=float, help="[default: 0.0] (SAM 2 folders)")
@click.option("--box-nms-thresh", type=float, default=0.7, show_default=True)
@click.option("--crop-n-layers", type=int, default=0, show_default=True)
@click.option("--crop-nms-thresh", type=float, default=0.7, show_default=True)
@click.option("--crop-overlap-ratio", type=float, default=512 / 1500, show_default=True)
@click.option("--crop-n-points-downscale-factor", type=int, default=1, show_default=True)
@click.option(
    "--min-mask-region-area",
    type=int,
    default=0,
    show_default=True,
    help="Fill holes and remove specks up to this many low-res pixels (SAM 1: of fewer final mask pixels).",
)
@click.option("--use-m2m", is_flag=True, help="One refinement step feeding each mask back in (SAM 2 folders).")
@click.option("--single-mask", is_flag=True, help="One mask per point (multimask_output=False; SAM 2 folders).")
@click.option(
    "--output-mode",
    type=click.Choice(["coco_rle", "uncompressed_rle"]),
    default="coco_rle",
    show_default=True,
    help="How segmentations are written in the JSON.",
)
@click.option("--precision", default="fp32", show_default=True, help="Which exported graphs to use.")
@click.option("--threads", type=int, help="onnxruntime intra-op threads (default: all cores).")
@click.option("--force", is_flag=True, help="Replace existing output files.")
def automask(
    model_dir: Path,
    image: Path,
    out: Path,
    overlay_path: Path | None,
    points_per_side: int | None,
    point_grids: Path | None,
    precision: str,
    threads: int | None,
    single_mask: bool,
    force: bool,
    **params,
) -> None:
    """Segment everything in IMAGE without prompts (the automatic mask generator, no torch).

    Parameters are the official SAM2AutomaticMaskGenerator's (SamAutomaticMaskGenerator's for
    SAM 1 folders), with its defaults. Writes the
    mask records (segmentation as RLE, area, bbox, predicted_iou, point_coords,
    stability_score, crop_box) to --out, and a picture of them to --overlay.
    """
    from tqdm import tqdm

    from .runtime.inputs import read_image
    from .runtime.outputs import automask_to_files
    from .runtime.sam1_automask import generator_class

    grids = _load_grids(point_grids)
    for path in (out, overlay_path):
        if path is not None:
            refuse_overwrite(path, force)
    rgb = read_image(image)
    # options left unset take the family's own defaults; SAM 2-only ones given to a SAM 1
    # folder are refused by name
    given = {k: v for k, v in params.items() if v is not None and v is not False}
    if single_mask:
        given["multimask_output"] = False
    generator = generator_class(model_dir)(
        model_dir,
        precision=precision,
        threads=threads,
        points_per_side=32 if points_per_side is None and grids is None else points_per_side,
        point_grids=grids,
        **given,
    )
    with tqdm(total=1, unit="step", desc="automask", leave=False) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        summary = automask_to_files(
            generator, rgb, out, overlay_path=overlay_path, force=force, source=str(image), progress=progress
        )
    t = summary["timings_s"]
    click.echo(
        f"{summary['count']} masks in {t['total']:.1f} s (encoder {t['encoder']:.1f} s, decoder "
        f"{t['decoder']:.1f} s, masks {t['masks']:.1f} s) -> {out}" + (f", {overlay_path}" if overlay_path else "")
    )


@cli.command()
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The checkpoint the artifacts were exported from.",
)
@click.option("--random-weights", is_flag=True, help="Rebuild the reference from seeded random weights.")
@click.option("--seed", type=int, help="Seed for --random-weights.  [default: the manifest's]")
@click.option(
    "--images",
    "images",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Your own image, added to the samples. Repeatable.",
)
@click.option(
    "--samples",
    default="all",
    show_default=True,
    help="Comma-separated bundled photos (chelsea, astronaut, coffee, camera, rocket, hubble, "
    "retina), 'all' or 'none'.",
)
@click.option(
    "--kinds",
    default="all",
    show_default=True,
    help="Comma-separated prompt kinds (point, points, box, ...), 'all' or 'none'.",
)
@click.option("--precision", default="fp32", show_default=True, help="Comma-separated precisions to gate.")
@click.option(
    "--automask/--no-automask",
    default=True,
    show_default=True,
    help="Also compare the automatic mask generator with the official one (at precisions "
    "whose gates define automask_* thresholds: fp32).",
)
@click.option(
    "--runtime",
    type=click.Choice(["python", "web"]),
    default="python",
    show_default=True,
    help="Ours: the Python runtime, or the browser page in headless Chromium (onnxruntime-web, wasm; "
    "reports parity.web*.json, no automask).",
)
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where parity.json / parity.html go.  [default: MODEL_DIR]",
)
@click.option(
    "--video",
    is_flag=True,
    help="Also compare video tracking with the official SAM2VideoPredictor on a clip built from the "
    "bundled photos (parity.video.json / .html; SAM 2 folders with video graphs). "
    "With --samples none, only that.",
)
@click.option(
    "--video-frames",
    type=click.IntRange(8, 1000),
    default=40,
    show_default=True,
    help="Frames of the --video clip (the official predictor costs ~10 s a frame on 2 cores).",
)
def parity(
    model_dir: Path,
    checkpoint: Path | None,
    random_weights: bool,
    seed: int | None,
    images,
    samples: str,
    kinds: str,
    precision: str,
    automask: bool,
    runtime: str,
    report_dir: Path | None,
    video: bool,
    video_frames: int,
) -> None:
    """Compare MODEL_DIR's artifacts with the official PyTorch SAM 2 on real photos.

    Every (image, prompt kind) case is held to the gates in configs/<variant>.yaml. Writes
    parity.json and parity.html, records the verdict in the manifest, exits 0 only if every
    case passes (5 otherwise).
    """
    from .core.errors import ParityFailed
    from .parity.cases import parse_kinds, parse_samples
    from .parity.engine import run_parity
    from .parity.report import save_report

    if checkpoint is not None and random_weights:
        raise click.UsageError("give at most one of --checkpoint and --random-weights")
    if seed is not None and not random_weights:
        raise click.UsageError("--seed only applies to --random-weights")
    names, kind_list = parse_samples(samples), parse_kinds(kinds)  # InputError: one line, exit 1
    if not names and not images and not video:
        raise click.UsageError("no images: give --samples or --images (or --video)")
    failed = []
    for prec in [p for p in precision.split(",") if p] if names or images else []:
        where = "" if runtime == "python" else ", in the browser"
        click.echo(f"parity {model_dir} ({prec}{where}) vs the official predictor", err=True)
        result = run_parity(
            model_dir,
            prec,
            runtime=runtime,
            checkpoint=checkpoint,
            seed=seed,
            samples=names,
            images=list(images),
            kinds=kind_list,
            automask=automask,
        )
        _, html_path = save_report(result, report_dir)
        click.echo(
            f"{prec}: {'PASS' if result.passed else 'FAIL'}  {len(result.cases)} cases on "
            f"{len(result.images)} images, worst mask IoU {result.worst_iou:.6f}, "
            f"{result.seconds:.0f} s -> {html_path}"
        )
        for line in result.failures():
            click.echo(f"  {line}", err=True)
        failed += [f"{prec} {line}" for line in result.failures()]
    if video:
        failed += _video_parity(model_dir, video_frames, checkpoint, seed, report_dir)
    if failed:
        raise ParityFailed(f"{len(failed)} parity failure(s), first: {failed[0]}")


def _video_parity(model_dir: Path, frames: int, checkpoint, seed, report_dir) -> list[str]:
    from .parity.video import run_video_parity
    from .parity.video_report import record_video_parity, write_video_report

    click.echo(f"video parity {model_dir} ({frames} frames) vs the official SAM2VideoPredictor", err=True)
    result = run_video_parity(model_dir, frames, checkpoint=checkpoint, seed=seed)
    json_path, html_path = write_video_report(result, report_dir or model_dir)
    record_video_parity(model_dir, result, json_path)
    worst = result.worst
    click.echo(
        f"video: {'PASS' if result.passed else 'FAIL'}  {len(result.rows)} object-frames, worst IoU "
        f"{worst['video_iou_min']:.6f}, object score {worst['video_object_score_abs']:.1e}, pointer rel L2 "
        f"{worst['video_obj_ptr_rel_l2']:.1e}, {result.seconds:.0f} s -> {html_path}"
    )
    for line in result.failures():
        click.echo(f"  {line}", err=True)
    return [f"video {line}" for line in result.failures()]


@cli.command()
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.option(
    "--runs",
    type=click.IntRange(1, 1000),
    default=10,
    show_default=True,
    help="Timed encoder calls per engine (decoder: 5x as many).",
)
@click.option(
    "--warmup",
    type=click.IntRange(0, 100),
    default=2,
    show_default=True,
    help="Untimed calls of each graph before timing.",
)
@click.option(
    "--rounds",
    type=click.IntRange(1, 100),
    default=1,
    show_default=True,
    help="Passes over the engines, alternating them in fresh processes; calls are pooled "
    "(steadier ratios on a machine whose speed drifts).",
)
@click.option("--threads", type=click.IntRange(1, 1024), help="Threads for torch and onnxruntime (default: all cores).")
@click.option(
    "--image",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Photo to encode.  [default: the bundled chelsea.jpg]",
)
@click.option(
    "--torch/--no-torch",
    "with_torch",
    default=True,
    show_default=True,
    help="Include torch eager FP32 (needs torch and sam2).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where bench.json / bench.png go.  [default: MODEL_DIR]",
)
@click.option("--force", is_flag=True, help="Replace an existing bench.json / bench.png.")
def bench(
    model_dir: Path,
    runs: int,
    warmup: int,
    rounds: int,
    threads: int | None,
    image: Path | None,
    with_torch: bool,
    out: Path | None,
    force: bool,
) -> None:
    """Latency, bytes and peak RSS of torch eager FP32 and onnxruntime at every exported precision.

    Each engine runs in its own process, one after the other, with the same thread count, image
    and prompt. Prints a table; writes bench.json and bench.png.
    """
    from .bench.benchmark import BENCH_JSON, BENCH_PNG, describe, run_bench, save_bench, table

    out = out or model_dir
    for name in (BENCH_JSON, BENCH_PNG):  # fail before minutes of timing, not after
        refuse_overwrite(out / name, force)
    result = run_bench(
        model_dir,
        runs=runs,
        threads=threads,
        warmup=warmup,
        image=image,
        torch=with_torch,
        rounds=rounds,
        progress=lambda label: click.echo(f"[bench] {label} ...", err=True),
    )
    json_path, png_path = save_bench(result, out, force=force)
    click.echo(f"{describe(result)}\n\n{table(result)}\nwrote {json_path} and {png_path}")


@cli.command()
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="The release folder to create."
)
@click.option(
    "--allow-random-weights",
    is_flag=True,
    help="Release seeded random weights anyway (pipeline tests); the model card says so at the top.",
)
@click.option("--force", is_flag=True, help="Replace an existing release folder.")
@click.option(
    "--browser-ep",
    "browser_eps",
    type=click.Choice(["wasm", "webgpu"]),
    multiple=True,
    default=["wasm"],
    show_default=True,
    help="onnxruntime-web execution provider to check every graph file on in headless Chromium "
    "(repeat for both; webgpu uses the machine's adapter, a software one without a GPU).",
)
@click.option("--no-browser-check", is_flag=True, help="Skip the browser check (no Chromium here); the card says so.")
def release(
    model_dir: Path, out: Path, allow_random_weights: bool, force: bool, browser_eps: tuple, no_browser_check: bool
) -> None:
    """A hub-ready folder: ONNX + ORT-format graphs, operator config, model card, manifest, SHA256SUMS.

    Refuses random weights (exit 6), any precision without a passing parity report (exit 6),
    files that differ from the manifest (exit 3) and graph files that onnxruntime-web cannot
    run on wasm (exit 3).
    """
    from .release.build import build_release, verify_release

    refuse_overwrite(out, force)
    record = build_release(
        model_dir,
        out,
        allow_random_weights=allow_random_weights,
        force=force,
        progress=lambda msg: click.echo(f"[release] {msg} ...", err=True),
        browser_eps=() if no_browser_check else tuple(dict.fromkeys(browser_eps)),
    )
    files = verify_release(out)
    worst = min(c["mask_iou_min"] for c in record["ort_format"]["check"].values())
    web = record["browser"]
    click.echo(
        f"{out}: {len(files)} files + SHA256SUMS; precisions {', '.join(record['parity'])} "
        f"(parity pass); .ort masks IoU min {worst:.6f} vs .onnx; "
        + (f"{len(web['for_web'])} of {len(web['files'])} graph files for the web" if web else "no browser check")
        + ("; RANDOM WEIGHTS (stamped in README.md)" if record["random_weights"] else "")
    )


@cli.command()
@click.argument("release_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--repo-id", required=True, help="Hugging Face model repo, OWNER/NAME (created if missing).")
@click.option("--dry-run", is_flag=True, help="Verify the folder and print the upload plan; upload nothing.")
def push(release_dir: Path, repo_id: str, dry_run: bool) -> None:
    """Upload a release folder (checked against its SHA256SUMS) to the Hugging Face Hub."""
    from .release.build import push_release

    push_release(release_dir, repo_id, dry_run=dry_run, echo=click.echo)


def main() -> None:
    cli(prog_name="sam2-onnx")


if __name__ == "__main__":
    main()
