"""The pytest plugin on a real third-party suite: what it flags, and what it changes.

    $ .venv/bin/python bench/bench_plugin_realsuite.py
    (figures: see the output of a run; they are printed, not asserted)

pexpect's and execnet's own tests (from their source releases on the package index) are
run four times each in a temporary directory, with this interpreter's pytest and
zombiectl: the check off twice (the second run says how flaky the suite is by itself),
in warn mode, and in fail mode. execnet caches its gateway processes in a session-scoped
group through a function-scoped fixture; pexpect runs a pty child per test. Each test's outcome is compared with the first run's. The promise: warn mode
changes no outcome beyond the suite's own flakiness; fail mode adds errors only at the
teardown of the tests it blames.

Needs the package index (pip download); prints why and exits 0 without it.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

# name: (requirement, its dependencies, the directory to import it from, test files).
# Process-heavy subsets that run in well under two minutes; pexpect's test_async.py is
# where a lazy import at teardown used to crash (SystemError from the assertion rewriter).
SUITES = {
    "pexpect": (
        "pexpect==4.9.0",
        ["ptyprocess>=0.5"],
        ".",
        [
            "tests/test_async.py",
            "tests/test_isalive.py",
            "tests/test_destructor.py",
            "tests/test_run.py",
            "tests/test_popen_spawn.py",
            "tests/test_misc.py",
            "tests/test_interact.py",
            "tests/test_unicode.py",
            "tests/test_delay.py",
            "tests/test_env.py",
            "tests/test_constructor.py",
            "tests/test_dotall.py",
            "tests/test_winsize.py",
            "tests/test_log.py",
        ],
    ),
    "execnet": (
        "execnet==2.1.2",
        [],
        "src",
        ["testing/test_gateway.py", "testing/test_channel.py"],
    ),
}
SUMMARY = re.compile(r"^(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS) (?:at \w+ of )?(\S+)", re.M)
FLAGGED = re.compile(r"ZombieLeakWarning: (.+?) left (\d+) process")
BLAMED = re.compile(r"^(.+?) left (\d+) process(?:es)? behind", re.M)


def pip(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args],
        check=True,
        capture_output=True,
        text=True,
    )


def fetch(workdir: Path, requirement: str, deps: list[str]) -> Path:
    """The source release unpacked in workdir, its dependencies in workdir/site."""
    name = requirement.split("==")[0]
    pip("download", "--no-binary", ":all:", "--no-deps", requirement, "-d", str(workdir))
    sdist = next(workdir.glob(f"{name}-*.tar.gz"))
    with tarfile.open(sdist) as tar:
        tar.extractall(workdir, filter="data")
    (workdir / "site").mkdir()
    if deps:
        pip("install", "--target", str(workdir / "site"), *deps)
    return next(p for p in workdir.iterdir() if p.is_dir() and p.name.startswith(f"{name}-"))


def run(src: Path, path: str, mode: str, files: list[str]) -> tuple[dict[str, str], str, float]:
    """{test: outcomes} for one run of files with the check in mode, the output, seconds."""
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA"]
    cmd += ["-o", f"zombies={mode}", "-W", "always::pytest.PytestWarning", *files]
    env = {"PYTHONPATH": path, "PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"}
    started = time.perf_counter()
    out = subprocess.run(
        cmd, cwd=src, capture_output=True, text=True, env=env, timeout=600, check=False
    ).stdout
    seconds = time.perf_counter() - started
    outcomes: dict[str, list[str]] = {}
    for outcome, test in SUMMARY.findall(out):
        outcomes.setdefault(test, []).append(outcome)
    return {t: "+".join(sorted(o)) for t, o in outcomes.items()}, out, seconds


def changed(base: dict[str, str], other: dict[str, str]) -> list[str]:
    return sorted(t for t in base.keys() | other.keys() if base.get(t) != other.get(t))


def bench(name: str, everything: bool) -> None:
    requirement, deps, top, subset = SUITES[name]
    with tempfile.TemporaryDirectory(prefix="zombiectl-realsuite-") as tmp:
        try:
            src = fetch(Path(tmp), requirement, deps)
        except (subprocess.CalledProcessError, StopIteration) as err:
            print(f"skipped: could not fetch {requirement} from the package index ({err})")
            return
        files = (
            [subset[0].split("/")[0]] if everything else [f for f in subset if (src / f).exists()]
        )
        path = f"{(src / top).resolve()}:{Path(tmp) / 'site'}"
        runs = {}
        for mode in ("off", "off-again", "warn", "fail"):
            outcomes, out, seconds = run(src, path, mode.split("-")[0], files)
            runs[mode] = (outcomes, out, seconds)
            counts = {
                o: sum(1 for v in outcomes.values() if o in v)
                for o in ("PASSED", "FAILED", "ERROR")
            }
            print(
                f"{name} {mode:10} {len(outcomes):4} tests  {seconds:6.1f} s  "
                + "  ".join(f"{k.lower()} {v}" for k, v in counts.items()),
                flush=True,
            )
            if "SystemError" in out or "INTERNALERROR" in out:
                print(f"  note: the {mode} run crashed inside pytest")
        report(requirement, files, runs)


def report(
    requirement: str, files: list[str], runs: dict[str, tuple[dict[str, str], str, float]]
) -> None:
    base = runs["off"][0]
    flaky = changed(base, runs["off-again"][0])
    warn_changed = changed(base, runs["warn"][0])
    fail_changed = changed(base, runs["fail"][0])
    # Beyond the errors fail mode adds at the teardown of the tests it blames.
    own = {t: "+".join(o for o in v.split("+") if o != "ERROR") for t, v in runs["fail"][0].items()}
    fail_own = [t for t in fail_changed if own.get(t) != base.get(t)]
    flagged = {who for who, _ in FLAGGED.findall(runs["warn"][1])}
    blamed = {who.strip() for who, _ in BLAMED.findall(runs["fail"][1])}
    print(f"{requirement}: {len(files)} test files, {len(base)} tests")
    print(f"  flagged in warn mode                 {len(flagged):4}")
    print(f"  blamed in fail mode                  {len(blamed):4}")
    print(f"  outcomes changed, off vs off again   {len(flaky):4}  (the suite's own flakiness)")
    print(f"  outcomes changed, off vs warn        {len(warn_changed):4}")
    print(f"  outcomes changed, off vs fail        {len(fail_changed):4}")
    print(f"    of which beyond a teardown error   {len(fail_own):4}")
    for who in sorted(flagged):
        print(f"    flagged: {who}")
    for test in warn_changed:
        mark = "  (also flaky off)" if test in flaky else ""
        print(f"    warn changed: {test}: {base.get(test)} -> {runs['warn'][0].get(test)}{mark}")
    for test in fail_own:
        print(f"    fail changed: {test}: {base.get(test)} -> {runs['fail'][0].get(test)}")
    held = runs["warn"][1].split("processes kept for the whole session")
    if len(held) > 1:
        print("  kept for the session (warn run):")
        for line in held[1].splitlines()[1:]:
            if line.startswith("pid "):
                print(f"    {line}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--all", action="store_true", help="every test file, not the subset")
    ap.add_argument("--suite", choices=[*SUITES, "both"], default="both")
    args = ap.parse_args()
    for name in SUITES if args.suite == "both" else [args.suite]:
        bench(name, args.all)
    return 0


if __name__ == "__main__":
    sys.exit(main())
