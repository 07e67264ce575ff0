"""Command line: python -m vissearch COMMAND.

The commands and their arguments are one table, :data:`vissearch.commands.COMMANDS`. A
:class:`~vissearch.errors.UserError` prints as one line and exits 2; Ctrl-C exits 130; anything
else is a bug: one line saying so (exit 1), with the traceback in a file and on screen with
``--debug``. TensorFlow is imported only by the commands that need it, with its native start-up
chatter silenced unless ``--debug`` or the user's own ``TF_CPP_MIN_LOG_LEVEL`` asks for it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import stat
import sys
import tempfile
import threading
import traceback
from pathlib import Path

from vissearch import __version__, quiet
from vissearch.commands import COMMANDS
from vissearch.errors import INTERRUPT, UserError

# in a folder of this user's own (mode 0700), never through a link: on a shared machine another
# user could otherwise plant /tmp/NAME as a link and have our error overwrite their chosen file
TRACEBACK_DIR = Path(tempfile.gettempdir()) / f"vissearch-{os.getuid()}"
TRACEBACK_FILE = TRACEBACK_DIR / "last-error.txt"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m vissearch", description=__doc__.splitlines()[0],
                                epilog=examples(), formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--debug", action="store_true", help="show tracebacks and TensorFlow's logs")
    p.add_argument("--version", action="version", version=f"vissearch {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for c in COMMANDS.values():
        c.arguments(sub.add_parser(c.name, help=c.help, description=c.help,
                                   epilog=f"example: {c.example}"))
    return p


def examples() -> str:
    """Every command with one example."""
    width = max(len(name) for name in COMMANDS)
    lines = [f"  {c.name:<{width}}  {c.help}\n  {'':<{width}}    {c.example}"
             for c in COMMANDS.values()]
    return "commands, each with an example:\n" + "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    if not [a for a in argv if a != "--debug"]:
        parser.print_help()
        return 0
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        command = COMMANDS[args.command]
        if command.needs_tensorflow:
            quiet.import_tensorflow(args.debug)
        with _ctrl_c_remembered():
            code = command.handler(args)
        if INTERRUPT.is_set():  # a Ctrl-C that Python dropped, after the work was done
            raise KeyboardInterrupt
        return code
    except UserError as err:
        if args.debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        print(f"interrupted: {err}" if str(err) else "interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if interrupted(err):  # Ctrl-C inside a library that re-raised it as its own error
            print("interrupted", file=sys.stderr)
            return 130
        if args.debug:
            raise
        return internal_error(err)


@contextlib.contextmanager
def _ctrl_c_remembered():
    """While a command runs, Ctrl-C also sets :data:`INTERRUPT` (where Python handles SIGINT
    itself: a shell's background job ignores it, and keeps ignoring it)."""
    INTERRUPT.clear()
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return

    def on_ctrl_c(signum, frame):
        INTERRUPT.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_ctrl_c)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def internal_error(err: Exception) -> int:
    """The last-resort net: one line, the traceback kept in a file, exit 1."""
    text = str(err).strip().splitlines()
    first = f"{type(err).__name__}: {text[0][:300]}" if text else type(err).__name__
    try:
        _keep("".join(traceback.format_exception(err)))
        kept = f"traceback in {TRACEBACK_FILE}; "
    except OSError:
        kept = ""
    print(f"internal error: {first} ({kept}run with --debug to see it)", file=sys.stderr)
    return 1


def _keep(text: str) -> None:
    """Write the traceback file only inside our own private folder, and not through a link."""
    TRACEBACK_DIR.mkdir(mode=0o700, exist_ok=True)
    info = TRACEBACK_DIR.lstat()
    if stat.S_ISLNK(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise OSError(f"{TRACEBACK_DIR} is not this user's private folder")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(TRACEBACK_FILE, flags, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def interrupted(err: BaseException) -> bool:
    """Whether a KeyboardInterrupt is anywhere in the exception's cause/context chain."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, KeyboardInterrupt):
            return True
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return False
