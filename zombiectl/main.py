"""The `zombiectl` entry point.

Two invocations skip click (and rich and psutil) because their start-up time is part of
what they are for: `--version`, and `run`, an init that must start about as fast as a
bare interpreter. `list` in its machine-readable forms (`--json`, `--format json|prometheus`)
also has a fast path, because monitoring checks call it often on big tables. Everything
else, including every error and `--help`, goes through click.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    try:
        _main(argv)
    except KeyboardInterrupt as interrupt:
        # Ctrl-C before any command's own handling (while click and rich are imported):
        # nothing was started, so nothing to clean up; no traceback.
        from zombiectl.errors import interrupted_exit_code, signum_of

        try:
            sys.stderr.write("zombiectl: interrupted\n")
            sys.stderr.flush()
        except OSError:
            pass
        sys.exit(interrupted_exit_code(signum_of(interrupt)))


def _main(argv: list[str] | None) -> None:
    args = sys.argv[1:] if argv is None else list(argv)
    if args == ["--version"]:
        from zombiectl import __version__

        sys.stdout.write(f"zombiectl {__version__}\n")
        sys.exit(0)
    if args and args[0] == "list":
        from zombiectl.commands.list_fast import try_fast_list

        rc = try_fast_list(args[1:])
        if rc is not None:
            sys.exit(rc)
    if args and args[0] == "run":
        try:
            from zombiectl.init.reaper import fast_main
        except ImportError:
            pass
        else:
            rc = fast_main(args[1:])
            if rc is not None:
                sys.exit(rc)
    from zombiectl.cli import run_cli

    sys.exit(run_cli(args))
