"""The ``sam2-onnx`` commands as a user runs them: help, tables, one-line errors, exit codes."""

from __future__ import annotations

import hashlib

import pytest
from click.testing import CliRunner

from exporter.cli import cli

from .fixtures import run_cli

COMMANDS = sorted(cli.commands)


def test_commands_exist():
    assert {"variants", "fetch", "inspect", "random-checkpoint"} <= set(COMMANDS)


@pytest.mark.parametrize("command", [[]] + [[c] for c in COMMANDS])
def test_help(command):
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output and "--help" in result.output


def test_variants_table():
    proc = run_cli("variants", check=True)
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:3] == ["variant", "alias", "parameters"]
    tiny = next(line for line in lines if line.startswith("sam2.1_hiera_tiny "))
    assert tiny.split()[1:5] == ["tiny", "39.0", "M", "sam2.1_hiera_tiny.pt"]
    assert len([line for line in lines if line.startswith("sam2")]) == 8


@pytest.mark.export
def test_random_checkpoint_is_reproducible_across_processes(tmp_path):
    a, b = tmp_path / "a" / "t.pt", tmp_path / "b" / "t.pt"
    out_a = run_cli("random-checkpoint", "tiny", "--seed", "7", "--out", a, check=True).stdout
    out_b = run_cli("random-checkpoint", "tiny", "--seed", "7", "--out", b, check=True).stdout
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
    assert out_a.splitlines()[1:] == out_b.splitlines()[1:]
    # nothing the user had is overwritten without --force
    again = run_cli("random-checkpoint", "tiny", "--seed", "8", "--out", a)
    assert again.returncode == 1 and "already exists; use --force" in again.stderr
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()


def test_inspect_prints_variant_and_digest(random_checkpoint):
    path, source = random_checkpoint("sam2_hiera_small")
    out = run_cli("inspect", path, check=True).stdout
    assert "variant       sam2_hiera_small" in out
    assert f"parameters    {46_043_842:,}" in out
    assert hashlib.sha256(path.read_bytes()).hexdigest() in out
    assert source.state_dict_sha256 in out


@pytest.mark.slow
def test_errors_are_one_line_without_traceback_unless_debug(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00garbage" * 100)
    proc = run_cli("inspect", junk)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith("error: ")
    assert "Traceback" not in proc.stderr
    debug = run_cli("--debug", "inspect", junk)
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_unknown_variant_exit_code():
    proc = run_cli("random-checkpoint", "huge", "--out", "x.pt")
    assert proc.returncode == 1 and "unknown variant 'huge'" in proc.stderr


def test_unexpected_exceptions_are_one_line_too():
    """An exception no Sam2OnnxError describes (a library's, or a bug) still ends in one line
    naming the command, with exit 70; --debug lets the traceback through."""

    @cli.command("explode")
    def explode():
        raise IndexError("index 2 is out of bounds for dimension 1 with size 0\nmore detail")

    try:
        result = CliRunner().invoke(cli, ["explode"])
        assert result.exit_code == 70, result.output
        assert result.output.strip() == (
            "error: explode: unexpected IndexError: index 2 is out of bounds for "
            "dimension 1 with size 0 (rerun with --debug for the traceback)"
        )
        debug = CliRunner().invoke(cli, ["--debug", "explode"])
        assert isinstance(debug.exception, IndexError)
    finally:
        del cli.commands["explode"]


def test_sample_and_kind_lists_mean_the_same_everywhere():
    """``--samples`` / ``--kinds`` of ``sam2-onnx parity`` and of the release job are parsed by
    one function: 'all', 'none' and names, unknown names refused with the choices."""
    from exporter.core.errors import InputError
    from exporter.parity.cases import KINDS, SAMPLES, parse_kinds, parse_samples

    assert parse_samples("all") == list(SAMPLES) and parse_kinds("all") == list(KINDS)
    assert parse_samples("none") == [] and parse_kinds("none") == []
    assert parse_samples(" coffee, chelsea,") == ["coffee", "chelsea"]
    with pytest.raises(InputError, match="unknown prompt kind.s. pointz; known: point"):
        parse_kinds("point,pointz")
    proc = run_cli("parity", "/nonexistent", "--samples", "kittens")
    assert proc.returncode == 1 and "unknown sample image(s) kittens" in proc.stderr


def test_release_job_reads_the_lists_as_the_cli_does():
    import subprocess
    import sys

    from exporter.core.checkout import ROOT

    for args, message in (
        (["--samples", "kittens"], "unknown sample image(s) kittens"),
        (["--samples", "none"], "--samples none leaves parity no photos"),
    ):
        proc = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "release_job.py"), "tiny", "--random-weights", *args],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
