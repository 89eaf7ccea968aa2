"""The scenario commands: ``run``, ``validate`` and ``schema``."""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys

DEFAULT_PATHS = ["scenarios"]


def add_parsers(sub) -> None:
    run = sub.add_parser(
        "run", help="run scenario files against a fresh fake and report pass/fail",
        description="Run scenario files (or every *.yaml, *.yml, *.json in folders), each in a "
                    "fresh tenant of an in-process fake, or of a running one with --url.")
    run.add_argument("paths", nargs="*", metavar="PATH",
                     help="scenario files or folders (default: scenarios)")
    run.add_argument("--url", help="a running mock-planhat, e.g. http://127.0.0.1:8765; each "
                                   "file runs in a fresh tenant there, printed and deleted "
                                   "afterwards")
    run.add_argument("--keep", action="store_true",
                     help="with --url: keep each file's tenant on the server to look at it")
    from translator.settings import DELIVERY_MODES

    run.add_argument("--delivery", choices=DELIVERY_MODES, default=None,
                     help="deliver every file's calls this way, whatever its settings.delivery "
                          "says: rest (the translator's REST requests) or dock (each call to "
                          "/dock/segment, as Segment's cloud does)")
    run.add_argument("-q", "--quiet", action="store_true", help="print failures only")
    run.set_defaults(handler=_pipe_safe(run_command))

    validate = sub.add_parser("validate", help="check scenario files without running them",
                              description="Check scenario files; every problem is printed as "
                                          "file:line:column: path: message.")
    validate.add_argument("paths", nargs="+", metavar="PATH", help="scenario files or folders")
    validate.add_argument("--calls", action="store_true",
                          help="also print the Segment calls each valid file sends, one JSON "
                               "object a line")
    validate.set_defaults(handler=_pipe_safe(validate_command))

    record = sub.add_parser(
        "record", help="write a scenario file from what a tenant of a running fake received",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Write a scenario file that replays what one tenant of a running fake "
                    "received: its state before the first Segment call or Planhat write as "
                    "given.snapshot, every Segment call and Planhat write since as a step, and "
                    "its state now as expect.",
        epilog="example:\n  mock-planhat record --url http://127.0.0.1:8765 -o regression.yaml"
               "\n  mock-planhat run regression.yaml")
    record.add_argument("--url", required=True, help="the running mock-planhat")
    record.add_argument("--tenant", default=None, metavar="TOKEN",
                        help="either token of the tenant (default: the default tenant)")
    record.add_argument("-o", "--output", default="-", metavar="FILE",
                        help="the scenario file to write (default: standard output)")
    record.set_defaults(handler=_pipe_safe(record_command))

    schema = sub.add_parser("schema", help="print the JSON Schema of scenario files",
                            description="Print the JSON Schema (draft 2020-12) of scenario "
                                        "files, for editors and CI.")
    schema.set_defaults(handler=_pipe_safe(schema_command))


SIGPIPE_EXIT = 141  # 128 + SIGPIPE: what a Unix tool's shell reports when its reader left


def _pipe_safe(command):
    """``command``, stopping quietly when standard output's reader goes away (``validate
    --calls FILE | head``): no traceback, exit code 141 like other Unix tools."""
    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        try:
            code = command(args)
            sys.stdout.flush()  # inside the try: a last write can be the one that breaks
            return code
        except BrokenPipeError:
            # Python flushes stdout again at exit: point it at /dev/null so that is quiet too
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
            return SIGPIPE_EXIT
    return run


def _files(paths, out) -> list | None:
    from .load import find_files

    try:
        files = find_files(paths)
    except FileNotFoundError as exc:
        print(f"mock-planhat: error: {exc}: no such file or folder", file=out)
        return None
    if not files:
        print(f"mock-planhat: error: no scenario files (*.yaml, *.yml, *.json) in "
              f"{', '.join(map(str, paths))}", file=out)
        return None
    return files


def _why(exc: BaseException) -> str:
    """Why a connection failed, in the operating system's words ("Connection refused"), not
    the retry story requests and urllib3 wrap around it; else the exception's own text."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror
        reason = getattr(seen, "reason", None)
        seen = reason if isinstance(reason, BaseException) else seen.__cause__ or seen.__context__
    return str(exc)


def _reachable(url: str) -> str | None:
    """None when a mock-planhat answers at ``url``, else why not."""
    import requests

    try:
        response = requests.get(url.rstrip("/") + "/__admin/health", timeout=10)
    except (requests.RequestException, ValueError) as exc:
        return _why(exc)
    if response.status_code != 200:
        return f"GET /__admin/health answered {response.status_code}: is it a mock-planhat?"
    return None


def run_command(args: argparse.Namespace) -> int:
    from .run import Target, run_file

    files = _files(args.paths or DEFAULT_PATHS, sys.stderr)
    if files is None:
        return 2
    if args.url and (why := _reachable(args.url)):
        print(f"mock-planhat: error: cannot reach {args.url}: {why}", file=sys.stderr)
        return 2
    try:
        target = Target(url=args.url)
    except Exception as exc:  # noqa: BLE001 - a bad URL must not become a traceback
        print(f"mock-planhat: error: {exc}", file=sys.stderr)
        return 2
    passed = failed = 0
    try:
        for path in files:
            try:
                result = run_file(path, target, keep=args.keep, delivery=args.delivery)
            except OSError as exc:  # the server went away
                print(f"FAIL  {path}: cannot reach {args.url}: {_why(exc)}", flush=True)
                failed += 1
                continue
            if result.passed:
                passed += 1
            else:
                failed += 1
            if not result.passed or not args.quiet:
                print(result.render() + _tenant_line(result, args.url), flush=True)
    finally:
        target.close()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def _tenant_line(result, url: str | None) -> str:
    """With --url: which tenant the file ran in, and whether it is still there."""
    if not url or not result.tenant:
        return ""
    if result.deleted:
        return f"\n  tenant {result.tenant}: deleted (--keep keeps it)"
    return (f"\n  tenant {result.tenant}: kept, see {url.rstrip('/')}/__admin/state?tenant="
            f"{result.tenant}")


def validate_command(args: argparse.Namespace) -> int:
    from .load import ScenarioError, load_scenario
    from .plan import iter_calls

    files = _files(args.paths, sys.stderr)
    if files is None:
        return 2
    valid = invalid = 0
    for path in files:
        try:
            scenario = load_scenario(path)
        except ScenarioError as exc:
            invalid += 1
            for problem in exc.problems:
                print(problem)
            continue
        valid += 1
        if args.calls:
            for call in iter_calls(scenario):
                print(json.dumps(call, ensure_ascii=False))
        else:
            print(f"ok  {path}: {scenario.name}")
    if not args.calls:
        print(f"{valid} valid, {invalid} invalid")
    return 1 if invalid else 0


def record_command(args: argparse.Namespace) -> int:
    """GET /__admin/scenario, streamed into the file (temp file + rename: a failed download
    never leaves half a scenario)."""
    import os
    import tempfile
    from urllib.parse import quote

    import requests

    if args.output and args.output != "-" and os.path.isdir(args.output):
        print(f"mock-planhat: error: {args.output}: is a folder; -o names the file to write, "
              "e.g. -o regression.yaml", file=sys.stderr)
        return 2
    url = args.url.rstrip("/") + "/__admin/scenario"
    if args.tenant:
        url += "?tenant=" + quote(args.tenant, safe="")
    try:
        response = requests.get(url, stream=True, timeout=60)
    except (requests.RequestException, ValueError) as exc:
        print(f"mock-planhat: error: cannot reach {args.url}: {_why(exc)}", file=sys.stderr)
        return 2
    with response:
        if response.status_code != 200:
            try:
                message = response.json().get("message", response.text)
            except ValueError:
                message = response.text[:300]
            print(f"mock-planhat: error: {args.url} answered {response.status_code}: {message}",
                  file=sys.stderr)
            return 2
        if args.output == "-":
            for chunk in response.iter_content(65536):
                sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
            return 0
        folder = os.path.dirname(os.path.abspath(args.output))
        try:
            fd, temp = tempfile.mkstemp(prefix=".record-", suffix=".tmp", dir=folder)
        except OSError as exc:
            print(f"mock-planhat: error: {args.output}: {exc.strerror}", file=sys.stderr)
            return 2
        try:
            with os.fdopen(fd, "wb") as handle:
                for chunk in response.iter_content(65536):
                    handle.write(chunk)
            os.replace(temp, args.output)
        except (OSError, requests.RequestException) as exc:
            os.unlink(temp)
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            print(f"mock-planhat: error: {args.output}: {why}", file=sys.stderr)
            return 2
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def schema_command(args: argparse.Namespace) -> int:
    from .load import schema_text

    sys.stdout.write(schema_text().rstrip("\n") + "\n")
    return 0
