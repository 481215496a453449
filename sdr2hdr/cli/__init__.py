"""Command-line interface: parses and reports; the library does the work.

Each subcommand lives in its own module and is registered on :data:`cli`.
:func:`main` turns every :class:`~sdr2hdr.errors.Sdr2HdrError` (and Ctrl-C)
into a one-line message and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import sys

import click

from sdr2hdr import __version__
from sdr2hdr.errors import Sdr2HdrError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sdr2hdr")
def cli() -> None:
    """SDR video -> HDR10 video with JSInet / JSI-GAN (joint super-resolution and inverse tone mapping)."""


def _register() -> None:
    from sdr2hdr.cli import models as _models

    cli.add_command(_models.models)
    for mod_name, cmd_names in (
        ("sdr2hdr.cli.convert", ("convert", "sample")),
        ("sdr2hdr.cli.eval", ("eval",)),
        ("sdr2hdr.cli.train", ("train",)),
        ("sdr2hdr.cli.testset", ("testset",)),
    ):
        try:
            mod = __import__(mod_name, fromlist=["_"])
        except ModuleNotFoundError as exc:  # a subcommand not built yet
            if exc.name != mod_name:
                raise
            continue
        for name in cmd_names:
            cli.add_command(getattr(mod, name.replace("-", "_") + "_cmd", None) or getattr(mod, name))


_register()


def main(argv: list[str] | None = None) -> None:
    """Console entry point: ``sdr2hdr``."""
    try:
        rv = cli.main(args=argv, prog_name="sdr2hdr", standalone_mode=False)
        if isinstance(rv, int) and rv:
            sys.exit(rv)
    except click.exceptions.Abort:
        click.echo("error: interrupted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except Sdr2HdrError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
