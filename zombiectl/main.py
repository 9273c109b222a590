"""The `zombiectl` entry point.

Well-formed `--version`, `run` and `list` command lines are run without click (and
without rich and psutil where they are not drawn with): see `zombiectl.fastpath`.
Everything else, including every usage error and `--help`, goes through click.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    from zombiectl.stdout import finish_output, output_failed, prepare_streams

    prepare_streams()
    try:
        rc = _main(argv)
        finish_output()
    except KeyboardInterrupt as interrupt:
        # Ctrl-C before any command's own handling (while click and rich are imported):
        # nothing was started, so nothing to clean up; no traceback.
        from zombiectl.errors import interrupted_exit_code, signum_of

        try:
            sys.stderr.write("zombiectl: interrupted\n")
            sys.stderr.flush()
        except OSError:
            pass
        rc = interrupted_exit_code(signum_of(interrupt))
    except OSError as err:
        # A full disk or an I/O error under stdout (or a report file): the command has
        # cleaned up on its way out; this is the one line that says so.
        rc = output_failed(err)
    sys.exit(rc)


def _main(argv: list[str] | None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    from zombiectl.fastpath import dispatch

    rc = dispatch(args)
    if rc is None:
        from zombiectl.cli import run_cli

        rc = run_cli(args)
    return rc
