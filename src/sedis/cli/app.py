"""The sedis command: subcommands, and one-line errors instead of tracebacks."""

from __future__ import annotations

import logging
import os
import sys

import typer

from sedis import __version__
from sedis.cli import (
    contacts_cmds,
    context,
    demo_cmd,
    identity_cmds,
    image_cmds,
    ledger_cmds,
    scan_cmds,
    store_cmds,
)
from sedis.cli.output import printable

app = typer.Typer(
    name="sedis",
    help="Share container images securely: scan, encrypt, store on IPFS, record on Ethereum.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(store_cmds.app, name="store")
app.add_typer(identity_cmds.app, name="identity")
app.add_typer(contacts_cmds.app, name="contacts")
app.add_typer(ledger_cmds.app, name="ledger")
image_cmds.register(app)
app.command("demo")(demo_cmd.demo)
app.command("scan")(scan_cmds.scan)
app.add_typer(scan_cmds.vulndb_app, name="vulndb")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"sedis {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    debug: bool = typer.Option(False, "--debug", help="Show a traceback on errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """sedis: share container images securely."""


def main(argv: list[str] | None = None) -> int:
    from typer._click.exceptions import ClickException

    from sedis.core.errors import SedisError

    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args or bool(os.environ.get("SEDIS_DEBUG"))
    handler = _log_to_stderr() if debug else None
    command = typer.main.get_command(app)
    try:
        result = command.main(args=args, prog_name="sedis", standalone_mode=False)
    except ClickException as exc:
        _fail(f"error: {exc.format_message()}", debug)
        return exc.exit_code
    except SedisError as exc:
        _fail(str(exc), debug)
        return exc.exit_code
    except typer.Abort:
        _fail("aborted", debug)
        return 130
    except KeyboardInterrupt:
        _fail("interrupted", debug)
        return 130
    except BrokenPipeError:
        # The reader went away (| head): nothing more to say, and nothing to say it to.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:
        _fail(f"internal error: {type(exc).__name__}: {exc} (run with --debug for details)", debug)
        return 70
    finally:
        if handler is not None:
            logging.getLogger("sedis").removeHandler(handler)
    return result if isinstance(result, int) else 0


def _log_to_stderr() -> logging.Handler:
    """With --debug, what the library notes on the way (sedis.* loggers) goes to stderr,
    for this call of main only."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("sedis: debug: %(message)s"))
    logger = logging.getLogger("sedis")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    return handler


def _fail(message: str, debug: bool) -> None:
    if debug:
        import traceback

        traceback.print_exc()
    # Messages quote what nodes, registries and the ledger sent: escaped, they stay one line.
    sys.stderr.write("sedis: " + printable(" ".join(message.split())) + "\n")
    sys.stderr.flush()


def run() -> None:
    context.pace_collector()
    code = main()
    context.freeze_collector()  # out of the collector's pass at exit
    sys.exit(code)
