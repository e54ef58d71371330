"""The ``ssl-eval`` typer application: the app, its exit codes, the command decorator, and how a command fails or warns.

The commands live beside it (:mod:`ssl_eval.cli`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import typer
from typer.core import TyperCommand

from ssl_eval.common.safe_text import printable

CommandFunction = TypeVar("CommandFunction", bound=Callable[..., Any])

__all__ = ["app", "command", "fail", "warn", "EXIT_OK", "EXIT_NOTHING_EVALUATED", "EXIT_USAGE", "EXIT_SOME_FAILED",
           "EXIT_INTERRUPTED"]

app = typer.Typer(
    add_completion=False, no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]},
    help="Label-free monitoring of self-supervised learning: watch a checkpoint store, measure every "
    "checkpoint, and say which label-free signals track the linear probe.\n\n"
    "Start with: ssl-eval evaluate STORE   (STORE holds <family>/<run>/<checkpoint> files)",
)

# Exit codes (README, "Exit codes"): what a script or a scheduler can rely on.
EXIT_OK = 0  # everything new was evaluated (or nothing was new)
EXIT_NOTHING_EVALUATED = 1  # the run finished but every new checkpoint failed; or an unexpected error
EXIT_USAGE = 2  # bad command line, configuration, store or work dir: found before anything started
EXIT_SOME_FAILED = 3  # some checkpoints failed, the others were evaluated and their results kept
EXIT_INTERRUPTED = 130  # stopped with Ctrl-C


class _PlainUsageCommand(TyperCommand):
    """Usage lines name arguments plainly (``STORE``), as the help text does, not ``{STORE}``."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:  # click's Context, which typer vendors privately
        return [piece[1:-1] if piece.startswith("{") and piece.endswith("}") else piece
                for piece in super().collect_usage_pieces(ctx)]


def command(name: str | None = None) -> Callable[[CommandFunction], CommandFunction]:
    """``app.command`` with plain usage lines (:class:`_PlainUsageCommand`): the decorator of every command.

    Args:
        name: the command's name; None: the function's name.

    Returns:
        The typer decorator.
    """
    return app.command(name, cls=_PlainUsageCommand)


def _version(value: bool) -> None:
    if value:
        from ssl_eval import __version__

        typer.echo(f"ssl-eval {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Label-free monitoring of self-supervised learning."""


def fail(message: str) -> NoReturn:
    """Print ``error: <message>`` in red on stderr and exit with :data:`EXIT_USAGE` (2).

    Control codes in the message show as escapes (:func:`ssl_eval.common.safe_text.printable`);
    its line breaks are kept: a part from the store that may hold one is escaped by the caller.

    Args:
        message: what is wrong and how to fix it.

    Raises:
        typer.Exit: always, with code 2.
    """
    typer.secho(f"error: {printable(message, newlines=True)}", fg="red", err=True)
    raise typer.Exit(EXIT_USAGE)


def warn(message: str) -> None:
    """Print ``warning: <message>`` in yellow on stderr (escaped as :func:`fail` does); the command goes on.

    Args:
        message: what only looks wrong.
    """
    typer.secho(f"warning: {printable(message, newlines=True)}", fg="yellow", err=True)
