"""What a CI release job runs (behind ``scripts/release.sh``), per variant:

    fetch -> export (every precision) -> parity (each precision) -> bench -> release [-> push]

It stops at the first failed gate and exits with that gate's code (3 integrity, 4 download,
5 parity, 6 release refused, 1 anything else a user can fix). Re-running is idempotent: a step
whose result is already on disk and still matches (same weights and files, a passing parity
report with its recorded digest, a bench of these files with the same settings, a release that verifies against its
SHA256SUMS and holds these files) is skipped.

``--random-weights`` (alias ``--allow-random-weights``) builds from seeded random weights
instead of fetching the official checkpoint and lets the release through, stamped as such:
for testing the pipeline where the checkpoints cannot be downloaded.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from exporter.core.checkout import ROOT
from exporter.core.errors import InputError, ParityFailed, Sam2OnnxError
from exporter.core.variants import resolve
from exporter.jobs.steps import Job, rel
from exporter.parity.cases import parse_kinds, parse_samples
from exporter.precision import parse_precisions


def release_variant(job: Job, name: str, args) -> None:
    from exporter.core.manifest import read_manifest

    variant = resolve(name)
    folder = args.out / variant.name
    release_dir = args.release_dir / variant.name
    precisions = args.precisions
    ckpt: list[Path] = []

    def fetch():
        if args.random_weights:
            return "skipped", f"random weights, seed {args.seed} (--random-weights): nothing to download"
        from exporter.checkpoints.fetch import fetch as do_fetch

        result = do_fetch(variant.name, args.checkpoints, progress=True)
        ckpt.append(result.path)
        return (
            "ok" if result.downloaded else "skipped",
            f"{rel(result.path)}: {'downloaded' if result.downloaded else 'present, verified'}, sha256 {result.sha256[:12]}",
        )

    def export():
        from exporter.core.digests import sha256_file
        from exporter.export.current import checkpoint_weights, random_weights, stale_reason
        from exporter.export.pipeline import export_variant

        weights = random_weights(args.seed) if args.random_weights else checkpoint_weights(sha256_file(ckpt[0]))
        if stale_reason(folder, weights, precisions, exact=True) is None:
            return "skipped", f"{rel(folder)} already holds this export (files verified)"
        kwargs = {"seed": args.seed} if args.random_weights else {"checkpoint": ckpt[0]}
        result = export_variant(variant, args.out, force=True, precisions=precisions, **kwargs)
        return f"{rel(result.folder)}: " + ", ".join(result.manifest["files"])

    def parity(precision):
        from exporter.parity.engine import run_parity
        from exporter.parity.report import save_report
        from exporter.release.build import parity_record

        try:
            parity_record(folder, read_manifest(folder), precision)
            return "skipped", f"passing report for these files already recorded ({rel(folder)})"
        except Sam2OnnxError:
            pass
        result = run_parity(
            folder,
            precision,
            checkpoint=None if args.random_weights else ckpt[0],
            automask=args.automask,
            samples=args.sample_list,
            kinds=args.kind_list,
        )
        _, html = save_report(result)
        summary = f"{len(result.cases)} cases on {len(result.images)} photos, worst mask IoU {result.worst_iou:.6f}"
        if not result.passed:
            raise ParityFailed(f"{len(result.failures())} failure(s), first: {result.failures()[0]}; {summary}")
        return f"{summary}; {rel(html)}"

    def bench():
        from exporter.bench.benchmark import bench_settings, current_bench, run_bench, save_bench

        settings = bench_settings(args.runs, args.decoder_runs, args.warmup, args.threads, args.rounds)
        if current_bench(folder, read_manifest(folder), settings):
            return "skipped", f"{rel(folder / 'bench.json')} already measures these files with these settings"
        result = run_bench(
            folder,
            runs=args.runs,
            threads=args.threads,
            warmup=args.warmup,
            decoder_runs=args.decoder_runs,
            rounds=args.rounds,
        )
        save_bench(result, folder, force=True)
        enc = {f"{r['engine']} {r['precision']}": r["encoder"]["median_ms"] for r in result["results"]}
        return "encoder medians " + ", ".join(f"{k} {v:.0f} ms" for k, v in enc.items())

    def release():
        from exporter.release.build import build_release, current_release, verify_release

        if current_release(folder, release_dir):
            return "skipped", f"{rel(release_dir)} already releases these files and reports (SHA256SUMS verified)"
        record = build_release(
            folder, release_dir, allow_random_weights=args.random_weights, force=True, browser_eps=args.browser_eps
        )
        worst = min(c["mask_iou_min"] for c in record["ort_format"]["check"].values())
        web = record["browser"]
        return (
            f"{rel(release_dir)}: {len(verify_release(release_dir))} files + SHA256SUMS, .ort IoU min {worst:.6f}, "
            + (f"{len(web['for_web'])} of {len(web['files'])} graph files for the web" if web else "no browser check")
            + (", RANDOM WEIGHTS" if record["random_weights"] else "")
        )

    def push():
        from exporter.release.build import push_release

        repo = args.push.replace("{variant}", variant.name)
        plan = push_release(release_dir, repo, dry_run=args.dry_run)
        return f"{'dry run: ' if args.dry_run else ''}{len(plan)} files to {repo}"

    steps = [("fetch", fetch), (f"export ({','.join(precisions)})", export)]
    steps += [(f"parity {p}", lambda p=p: parity(p)) for p in precisions]
    steps += [("bench", bench), ("release", release)] + ([("push", push)] if args.push else [])
    for step, fn in steps:
        if not job.run(f"{variant.name}: {step}", fn):
            return


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("variants", nargs="+", metavar="VARIANT", help="names or aliases (tiny, small, base_plus, large)")
    ap.add_argument(
        "--random-weights",
        "--allow-random-weights",
        dest="random_weights",
        action="store_true",
        help="seeded random weights instead of the official checkpoint (pipeline tests; stamped)",
    )
    ap.add_argument("--seed", type=int, default=0, help="seed for --random-weights")
    ap.add_argument("--precision", help="precisions to export, gate and release (default fp32,fp16,int8)")
    ap.add_argument("--samples", default="all", help="parity photos (comma-separated), 'all' or 'none'")
    ap.add_argument("--kinds", default="all", help="parity prompt kinds (comma-separated), 'all' or 'none'")
    ap.add_argument("--no-automask", dest="automask", action="store_false", help="skip the automask parity cases")
    ap.add_argument("--runs", type=int, default=10, help="bench: timed encoder calls per engine")
    ap.add_argument("--decoder-runs", type=int, help="bench: timed decoder calls (default 5x --runs)")
    ap.add_argument("--warmup", type=int, default=2, help="bench: untimed calls of each graph before timing")
    ap.add_argument("--rounds", type=int, default=1, help="bench: alternating passes over the engines, pooled")
    ap.add_argument("--threads", type=int, help="bench: threads (default: all cores)")
    ap.add_argument("--checkpoints", type=Path, default=ROOT / "checkpoints", help="where fetch downloads to")
    ap.add_argument("--out", type=Path, default=ROOT / "artifacts", help="exported model folders")
    ap.add_argument("--release-dir", type=Path, default=ROOT / "releases", help="release folders")
    ap.add_argument(
        "--browser-ep",
        dest="browser_eps",
        action="append",
        choices=["wasm", "webgpu"],
        help="release: onnxruntime-web execution provider to check every graph file on (repeatable; default wasm)",
    )
    ap.add_argument("--no-browser-check", action="store_true", help="release: no browser check (no Chromium here)")
    ap.add_argument(
        "--push",
        metavar="REPO_ID",
        help="Hugging Face repo to push each release to; '{variant}' is replaced by the variant name",
    )
    ap.add_argument("--dry-run", action="store_true", help="with --push: print the upload plan, upload nothing")
    args = ap.parse_args(argv)
    args.browser_eps = () if args.no_browser_check else tuple(dict.fromkeys(args.browser_eps or ["wasm"]))
    if args.dry_run and not args.push:
        ap.error("--dry-run only applies to --push")
    if args.push and len(args.variants) > 1 and "{variant}" not in args.push:
        ap.error("with several variants, --push needs '{variant}' in REPO_ID (e.g. me/{variant}-onnx)")
    try:
        names = [resolve(v).name for v in args.variants]
        # as export reads it (fp32 always, in a fixed order): the manifest records that list, and
        # every precision it holds needs a parity gate before release
        args.precisions = parse_precisions(args.precision or "fp32,fp16,int8")
        args.sample_list, args.kind_list = parse_samples(args.samples), parse_kinds(args.kinds)
        if not args.sample_list:
            raise InputError("--samples none leaves parity no photos: name at least one, or 'all'")
    except Sam2OnnxError as exc:
        ap.error(str(exc))
    job = Job("release")
    for name in names:
        release_variant(job, name, args)
        if job.failed:
            break
    job.summary(
        f"sam2-onnx release job: {', '.join(names)}"
        + (f", random weights seed {args.seed}" if args.random_weights else "")
    )
    return job.failed[0].exit_code if job.failed else 0


if __name__ == "__main__":
    sys.exit(main())
