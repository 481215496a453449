"""Command-line interface: parses and reports; the library does the work.

Each subcommand lives in its own module and is registered on :data:`cli`.
:func:`main` turns every :class:`~sdr2hdr.errors.Sdr2HdrError` into a
one-line message and a non-zero exit, never a traceback. It runs the command
inside :func:`sdr2hdr.signals.signals_as_exceptions`, so Ctrl-C, SIGTERM and
SIGHUP unwind the same way (temporary files deleted) and end with one line
and exit status 130, 143 or 129.
"""

from __future__ import annotations

import sys

import click

from sdr2hdr import __version__
from sdr2hdr.errors import Sdr2HdrError
from sdr2hdr.signals import Interrupted, signals_as_exceptions


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sdr2hdr")
def cli() -> None:
    """SDR video -> HDR10 video with JSInet / JSI-GAN (joint super-resolution and inverse tone mapping)."""


def _register() -> None:
    # Each module imports only click at import time; the work is imported inside the commands.
    from sdr2hdr.cli import convert, models, preview, sample, testset, train
    from sdr2hdr.cli import eval as evaluate

    for cmd in (convert.convert_cmd, sample.sample_cmd, preview.preview_cmd, evaluate.eval_cmd, models.models,
                testset.testset_cmd, train.train_cmd):
        cli.add_command(cmd)


_register()


def main(argv: list[str] | None = None) -> None:
    """Console entry point: ``sdr2hdr``."""
    try:
        with signals_as_exceptions():
            rv = cli.main(args=argv, prog_name="sdr2hdr", standalone_mode=False)
        if isinstance(rv, int) and rv:
            sys.exit(rv)
    except Interrupted as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(exc.exit_code)
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
