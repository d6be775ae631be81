"""The ``hwprofile`` command: a thin layer over the library, one module per subcommand.

``main(argv) -> int`` returns the exit code: 0 success, 1 a regression found by ``check``,
2 invalid input, 3 environment or measurement failure, 4 an internal bug (with traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import signal
import sys
import traceback
from collections.abc import Sequence
from types import ModuleType
from typing import NoReturn

from hwprofile._version import __version__
from hwprofile.errors import HwprofileError
from hwprofile.lifetime import interrupt_once

#: each subcommand and the module of hwprofile/cli/ that defines it, in the order ``--help`` lists them. A
#: command loads its own module only (``main``), so it pays for nothing it does not use; ``--help`` loads all.
COMMANDS = {"models": "models", "complexity": "complexity", "scale": "scale", "export": "export", "run": "run",
            "import": "import_table", "show": "show", "predict": "predict", "select": "select", "plot": "plot",
            "compare": "compare", "check": "check", "merge": "merge", "devices": "devices", "layers": "layers"}


def command_module(command: str) -> ModuleType:
    """The module of hwprofile/cli/ that defines ``command`` (a key of :data:`COMMANDS`)."""
    return importlib.import_module(f"{__name__}.{COMMANDS[command]}")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit code 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        raise SystemExit(2)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every subcommand, or of ``command``'s alone."""
    parser = _Parser(prog="hwprofile", description=(
        "Profile the scaled networks of 'Fast and Accurate Model Scaling' on this device and "
        "show whether runtime follows activations or flops (flops are multiply-adds)."))
    parser.add_argument("--version", action="version", version=f"hwprofile {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in ([command] if command in COMMANDS else COMMANDS):
        command_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv[0] if argv and argv[0] in COMMANDS else None)  # --help, --version: all
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    with _one_interrupt():
        return _handle(args)


@contextlib.contextmanager
def _one_interrupt():
    """SIGINT raises KeyboardInterrupt once, then is ignored while hwprofile cleans up (hwprofile.lifetime)."""
    try:
        old = signal.signal(signal.SIGINT, interrupt_once)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:  # after an interrupt SIGINT stays ignored: the exit (atexit clean-up) must not be cut short
        if signal.getsignal(signal.SIGINT) is interrupt_once:
            signal.signal(signal.SIGINT, old)


def _handle(args: argparse.Namespace) -> int:
    try:
        return int(args.handler(args) or 0)
    except HwprofileError as exc:
        sys.stderr.write(f"hwprofile: error: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("hwprofile: interrupted\n")
        return 130
    except BrokenPipeError:
        return 0
    except Exception:  # an internal bug: show it so it can be reported
        traceback.print_exc()
        sys.stderr.write("hwprofile: internal error (a bug in hwprofile); please report it\n")
        return 4


def entry() -> None:
    """Console-script entry point."""
    raise SystemExit(main())
