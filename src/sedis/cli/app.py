"""The sedis command: subcommands, options shared by all of them, and one-line errors
instead of tracebacks."""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Sequence

import typer
from typer._click import Command, Context
from typer._click.exceptions import UsageError
from typer.core import TyperArgument, TyperGroup, TyperOption

from sedis import __version__
from sedis.cli import (
    audit_cmds,
    contacts_cmds,
    context,
    demo_cmd,
    identity_cmds,
    image_cmds,
    ledger_cmds,
    login_cmd,
    scan_cmds,
    serve_cmds,
    store_cmds,
    watch_cmds,
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
    epilog=(
        "--as NAME, --password-env VAR, -o/--output FORMAT and --debug may also come "
        "before the command, as in: sedis -o json identity list"
    ),
)
app.add_typer(store_cmds.app, name="store")
app.add_typer(identity_cmds.app, name="identity")
app.add_typer(contacts_cmds.app, name="contacts")
app.add_typer(ledger_cmds.app, name="ledger")
image_cmds.register(app)
app.command("demo")(demo_cmd.demo)
app.command("scan")(scan_cmds.scan)
app.add_typer(scan_cmds.vulndb_app, name="vulndb")
app.command("audit")(audit_cmds.audit)
app.command("watch")(watch_cmds.watch)
app.command("login")(login_cmd.login)
app.command("serve")(serve_cmds.serve)


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
    try:
        args, debug_asked = arrange_global_options(command(), args)
    except UsageError as exc:
        _fail(f"error: {exc.format_message()}", False)
        return exc.exit_code
    debug = debug_asked or bool(os.environ.get("SEDIS_DEBUG"))
    handler = _log_to_stderr() if debug else None
    try:
        result = command().main(args=args, prog_name="sedis", standalone_mode=False)
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


@functools.cache
def command() -> Command:
    """The sedis command as click runs it, arguments shown by their metavars."""
    root = typer.main.get_command(app)
    for leaf in _commands(root):
        for param in leaf.params:
            if type(param) is TyperArgument:
                # Typer has no hook for how an argument is shown: the subclass changes
                # only that, and keeps every other behaviour of the argument.
                param.__class__ = _ArgumentByMetavar
    return root


class _ArgumentByMetavar(TyperArgument):
    """An argument shown as click shows one: by its metavar (its name in upper case
    when it has none), bare when it is required and in brackets when it is not,
    with no type beside it."""

    @property
    def display_name_raw(self) -> str:
        return self.metavar if self.metavar is not None else self.name.upper()

    def display_type_rich(self, ctx: Context) -> str | None:
        return None

    def _usage_display_name(self) -> str:
        name = self.display_name_raw
        if self.nargs != 1 and not name.endswith("..."):
            name += "..."
        return name if self.required else f"[{name}]"


def _commands(root: Command) -> list[Command]:
    """``root`` and every command and group under it."""
    found = [root]
    if isinstance(root, TyperGroup):
        for child in root.commands.values():
            found += _commands(child)
    return found


# Options that mean the same to every command that takes them, by each spelling
# and the long name that identifies them.
_GLOBAL_OPTIONS = {
    "--as": "--as",
    "--password-env": "--password-env",
    "-o": "--output",
    "--output": "--output",
}


def arrange_global_options(root: Command, args: Sequence[str]) -> tuple[list[str], bool]:
    """``args`` with the shared options given before the command moved after its name,
    where click looks for them, and ``--debug`` moved before it; and whether ``--debug``
    was given.

    ``sedis --as alice publish X`` becomes ``sedis publish --as alice X``. A shared
    option the command does not take is a usage error that names both. Option values
    are never read as command names, and nothing after ``--`` moves.
    """
    debug = False
    hoisted: list[tuple[str, list[str]]] = []
    path: list[str] = []
    node = root
    index = 0
    while index < len(args):
        word = args[index]
        if word == "--debug":
            debug = True
            index += 1
            continue
        name, inline = _split_option(word)
        if name in _GLOBAL_OPTIONS:
            taken = 1 if inline is not None else 2
            if index + taken > len(args):
                raise UsageError(f"Option '{name}' requires an argument.")
            hoisted.append((name, list(args[index : index + taken])))
            index += taken
            continue
        if isinstance(node, TyperGroup) and word in node.commands:
            path.append(word)
            node = node.commands[word]
            index += 1
            continue
        break
    tail = list(args[index:])
    if isinstance(node, TyperGroup):
        # No command was named (or an unknown one, or help was asked for): click
        # says so better than a complaint about the options would.
        return (["--debug"] if debug else []) + path + tail, debug
    command_name = " ".join(path)
    takes = _options_of(node)
    moved: list[str] = []
    for name, tokens in hoisted:
        if _GLOBAL_OPTIONS[name] not in takes:
            raise UsageError(f"'{command_name}' does not take {name}")
        moved += tokens
    tail, debug_in_tail = _take_debug(node, command_name, tail)
    debug = debug or debug_in_tail
    return (["--debug"] if debug else []) + path + moved + tail, debug


def _split_option(token: str) -> tuple[str, str | None]:
    """A shared option's spelling and the value given with it: ``--as=alice``,
    ``-ojson``. Any other token comes back whole, with no value."""
    if token.startswith("--"):
        name, equals, value = token.partition("=")
        return (name, value) if equals else (token, None)
    if token.startswith("-o") and len(token) > 2:
        return "-o", token[2:]
    return token, None


def _options_of(command: Command) -> set[str]:
    return {name for p in command.params if isinstance(p, TyperOption) for name in p.opts}


def _take_debug(command: Command, command_name: str, tail: list[str]) -> tuple[list[str], bool]:
    """``tail`` without the ``--debug`` flags in it, and whether there was one; a
    shared option that ``command`` does not take is a usage error here too.

    A value of one of the command's options is left alone, even if it reads
    ``--debug``, and so is everything after ``--``.
    """
    takes = _options_of(command)
    values_taken = {
        name: p.nargs
        for p in command.params
        if isinstance(p, TyperOption) and not p.is_flag and not p.count
        for name in p.opts
    }
    kept: list[str] = []
    debug = False
    index = 0
    while index < len(tail):
        word = tail[index]
        if word == "--":
            kept += tail[index:]
            break
        if word == "--debug" and "--debug" not in values_taken:
            debug = True
            index += 1
            continue
        name, _ = _split_option(word)
        if name in _GLOBAL_OPTIONS and _GLOBAL_OPTIONS[name] not in takes:
            raise UsageError(f"'{command_name}' does not take {name}")
        taken = values_taken.get(word, 0)
        kept += tail[index : index + 1 + taken]
        index += 1 + taken
    return kept, debug


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
