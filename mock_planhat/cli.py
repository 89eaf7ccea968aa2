"""The command line: ``serve`` (the default), ``run``, ``validate``, ``schema``."""

from __future__ import annotations

import argparse
import difflib
import os
import sys

from . import __version__
from .config import (
    BUSY_POLL_US,
    DEFAULT_HOST,
    DEFAULT_JOURNAL_BYTES,
    DEFAULT_JOURNAL_SIZE,
    DEFAULT_MAX_BODY,
    DEFAULT_PORT,
    DEFAULT_READ_TIMEOUT,
    DEFAULT_RECORDING_BYTES,
    EMAIL_MATCH_POLICIES,
    ENV_API_TOKEN,
    ENV_AUTOSAVE,
    ENV_EMAIL_MATCH,
    ENV_FLAGS,
    ENV_INIT,
    ENV_PORT,
    ENV_RATE_LIMIT,
    ENV_SERVER,
    ENV_STATE,
    ENV_TENANT_TOKEN,
    ENV_UNASSIGNED,
    MAX_BUSY_POLL_US,
    SERVERS,
    UNASSIGNED_POLICIES,
    Config,
    check_cidr,
)
from .ratelimit import parse_rate_limit
from .report import DEFAULT_PAYLOAD_BYTES, DEFAULT_REPORT_BYTES, DEFAULT_REPORT_SIZE

COMMANDS = ("serve", "run", "validate", "record", "schema")
DESCRIPTION = """\
A stateful fake of the Planhat API on your machine, and a test harness for Segment's
Planhat destination. With no command, 'serve' starts the fake."""
EPILOG = """\
examples:
  mock-planhat                          serve on 127.0.0.1:8765
  mock-planhat --port 0 --quiet         serve on a free port, no access log
  mock-planhat run scenarios/           run scenario files, report pass/fail
  mock-planhat validate my.yaml         check a scenario file
  mock-planhat record --url URL -o r.yaml
                                        a scenario file from what a running fake received

Run 'mock-planhat COMMAND --help' for a command's options."""
SERVER_OPTIONS = "server options ('serve', the default command; also 'mock-planhat serve --help'):"


def _serve_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "serve", help="start the fake (default)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Serve Planhat's API (api*.planhat.com and analytics.planhat.com paths), "
                    "Segment's tracking API and the admin API on one port.",
        epilog="examples:\n  mock-planhat\n  mock-planhat --port 0 --quiet\n"
               "  mock-planhat --unassigned discard --api-token secret")
    p.add_argument("--host", default=DEFAULT_HOST,
                   help="address to bind (default %(default)s; use 0.0.0.0 only on purpose)")
    p.add_argument("--port", type=_port, default=DEFAULT_PORT,
                   help=f"port, 0 for a free one (default %(default)s; env {ENV_PORT})")
    p.add_argument("--tenant-token", default=None, metavar="TOKEN",
                   help=f"tenant token of the default tenant, for the tracking paths "
                        f"(env {ENV_TENANT_TOKEN}; default mock-tenant-token)")
    p.add_argument("--api-token", default=None, metavar="TOKEN",
                   help=f"API token of the default tenant, for the REST paths "
                        f"(env {ENV_API_TOKEN}; default mock-api-token)")
    p.add_argument("--unassigned", choices=UNASSIGNED_POLICIES, default=None,
                   help="what happens to a new end user with no company: hold it as a pending "
                        f"contact or discard it (env {ENV_UNASSIGNED}; default hold)")
    p.add_argument("--email-match", choices=EMAIL_MATCH_POLICIES, default=None,
                   help="a row whose email matches one end user with another externalId: "
                        "attach to that end user and take the row's externalId (the Segment "
                        "destination's documented rule) or treat it as another person and "
                        f"create a new end user (env {ENV_EMAIL_MATCH}; default attach)")
    p.add_argument("--journal-size", type=_count, default=DEFAULT_JOURNAL_SIZE, metavar="N",
                   help="requests kept in the journal (default %(default)s)")
    p.add_argument("--journal-bytes", type=_count, default=DEFAULT_JOURNAL_BYTES,
                   metavar="BYTES", help="bytes the journal keeps at most, oldest requests "
                   "dropped first (default %(default)s = 32 MB)")
    p.add_argument("--report-size", type=_count, default=DEFAULT_REPORT_SIZE, metavar="N",
                   help="entries each report keeps (every tenant's, and the unknown-tenant "
                        "one; default %(default)s)")
    p.add_argument("--report-bytes", type=_count, default=DEFAULT_REPORT_BYTES,
                   metavar="BYTES", help="bytes each report keeps at most, oldest entries "
                   "dropped first (default %(default)s = 16 MB)")
    p.add_argument("--payload-bytes", type=_count, default=DEFAULT_PAYLOAD_BYTES,
                   metavar="BYTES", help="bytes of one body (journal) or payload (report) "
                   "kept; a longer one keeps its head, marked truncated (default "
                   "%(default)s = 64 KB)")
    p.add_argument("--recording-bytes", type=_count, default=DEFAULT_RECORDING_BYTES,
                   metavar="BYTES", help="bytes of Segment calls and Planhat writes each "
                   "tenant's recording (GET /__admin/scenario, record) keeps; 0 turns "
                   "recording off (default %(default)s = 64 MB)")
    p.add_argument("--max-body", type=_count, default=DEFAULT_MAX_BODY, metavar="BYTES",
                   help="largest request body accepted (default %(default)s = 32 MB)")
    p.add_argument("--read-timeout", type=_seconds, default=DEFAULT_READ_TIMEOUT,
                   metavar="SECONDS",
                   help="close a connection that sends nothing for this long, while sending "
                        "a request or idle between requests; 0 for no limit (default "
                        "%(default)g)")
    p.add_argument("--busy-poll", type=_busy_poll, default=BUSY_POLL_US,
                   metavar="MICROSECONDS",
                   help="after reading a request, keep polling the connections this long "
                        "before sleeping, so a kept-alive client's next request is read "
                        "without a wake-up (waitress; it spends up to that much CPU after "
                        "each request, none while idle); 0 turns it off (default "
                        "%(default)s)")
    p.add_argument("--admin-from", action="append", default=[], type=_cidr, metavar="CIDR",
                   help="also answer the admin API and the dashboard for clients in this "
                        "network, e.g. a Docker network 172.17.0.0/16 (repeatable; default: "
                        "loopback clients only)")
    p.add_argument("--state", default=None, metavar="FILE",
                   help="keep state in FILE: load it at start when it exists, save it on a "
                        "clean stop (Ctrl-C, SIGTERM) and every --autosave seconds; written "
                        f"atomically (env {ENV_STATE})")
    p.add_argument("--autosave", type=_interval, default=None, metavar="SECONDS",
                   help=f"with --state, also save every SECONDS (env {ENV_AUTOSAVE})")
    p.add_argument("--init", action=_Repeatable, default=None, metavar="PATH",
                   help="a scenario file or folder whose 'given' records (and, with "
                        "--init-steps, steps) are applied at start, in file-name order, to "
                        "the tenant its settings name (tenant_token), else the default "
                        f"tenant; repeatable (env {ENV_INIT}: paths separated by "
                        f"'{os.pathsep}')")
    p.add_argument("--init-steps", action="store_true",
                   help="with --init, also run the files' steps and expectations")
    p.add_argument("--rate-limit", type=_rate_limit, default=None, metavar="LIMIT",
                   help="answer 429 with Retry-After over a rate limit, per token, on the REST "
                        "paths and /dock/segment: 'planhat' (150/s with bursts of 50, and 200 a "
                        f"minute), N/s or N/min (e.g. 20/s), or off (env {ENV_RATE_LIMIT}; default: off)")
    p.add_argument("--server", choices=SERVERS, default=None,
                   help="the HTTP server: waitress (keep-alive, a pool of threads; the default) "
                        "or werkzeug's development server (a thread per connection, no "
                        f"keep-alive). Without this flag, werkzeug when waitress cannot be "
                        f"imported, said at start (env {ENV_SERVER})")
    p.add_argument("--quiet", action="store_true", help="no access log")
    return p


class _FromEnv(list):
    """A repeatable flag's values that came from its environment variable."""


class _Repeatable(argparse.Action):
    """``action="append"``, except that values from the environment variable are replaced by
    the flag's, not added to: a flag given on the command line wins, as for every flag."""

    def __call__(self, parser, namespace, values, option_string=None):
        items = getattr(namespace, self.dest, None)
        items = [] if items is None or isinstance(items, _FromEnv) else list(items)
        setattr(namespace, self.dest, [*items, values])


def apply_env(parser: argparse.ArgumentParser, env=None) -> None:
    """Set the defaults of ``parser``'s flags from their environment variables (``ENV_FLAGS``),
    each value checked by the flag's own type and choices: a bad one exits 2 with the flag's
    message, naming the variable (never a traceback). A repeatable flag's variable holds
    several values, separated by ``os.pathsep``."""
    env = os.environ if env is None else env
    actions = {action.dest: action for action in parser._actions}
    for dest, name in ENV_FLAGS.items():
        text = env.get(name)
        action = actions.get(dest)
        if not text or action is None:
            continue
        repeatable = isinstance(action, _Repeatable)
        values = [part for part in text.split(os.pathsep) if part] if repeatable else [text]
        if not values:
            parser.error(f"{name}={text!r}: no value (separate values with '{os.pathsep}')")
        checked = _FromEnv() if repeatable else []
        for part in values:
            try:
                value = action.type(part) if action.type else part
            except (argparse.ArgumentTypeError, ValueError, TypeError) as exc:
                parser.error(f"{name}={text!r}: {exc}")
            if action.choices is not None and value not in action.choices:
                parser.error(f"{name}={text!r}: invalid choice (choose from "
                             f"{', '.join(map(str, action.choices))})")
            checked.append(value)
        parser.set_defaults(**{dest: checked if repeatable else checked[0]})


def _bounded(parse, low, high, what: str):
    """An argparse type: ``parse(text)`` from ``low`` to ``high``, else a clean error."""
    def check(text: str):
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is not {what} ({low}-{high})")
        return value
    return check


_port = _bounded(int, 0, 65535, "a port number")
_seconds = _bounded(float, 0, 86_400, "a number of seconds")


def _cidr(text: str) -> str:
    try:
        return check_cidr(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).partition(": ")[2]) from None


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 86_400 * 365:
        raise argparse.ArgumentTypeError(f"{text} must be more than 0 seconds (at most a year)")
    return value


def _rate_limit(text: str) -> str:
    try:
        parse_rate_limit(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _busy_poll(text: str) -> int:
    value = _count(text)
    if value > MAX_BUSY_POLL_US:
        raise argparse.ArgumentTypeError(f"{value} must be at most {MAX_BUSY_POLL_US} "
                                         "microseconds")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must not be negative")
    return value


def build_parser(scenario_commands: bool = True) -> argparse.ArgumentParser:
    """The whole command line; without ``scenario_commands`` only ``serve`` (a faster start:
    the scenario commands import YAML and jsonschema)."""
    parser = argparse.ArgumentParser(prog="mock-planhat", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"mock-planhat {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    serve_parser = _serve_parser(sub)
    if scenario_commands:
        from .scenario import cli as scenario_cli

        scenario_cli.add_parsers(sub)
    # The top-level help lists the server's options too: 'mock-planhat --port 0' serves.
    options = serve_parser.format_help().split("\noptions:\n", 1)[-1].split("\nexamples:", 1)[0]
    options = options.split("\n", 1)[1] if options.startswith("  -h, --help") else options
    parser.epilog = f"{SERVER_OPTIONS}\n{options.rstrip()}\n\n{EPILOG}"
    parser.serve_parser = serve_parser
    return parser


def serve(args) -> int:
    from .app import create_app
    from .server import Server, catch_signals, run_until_signal

    try:
        config = Config.from_env(tenant_token=args.tenant_token, api_token=args.api_token,
                                 unassigned=args.unassigned, email_match=args.email_match,
                                 journal_size=args.journal_size,
                                 journal_bytes=args.journal_bytes,
                                 report_size=args.report_size,
                                 report_bytes=args.report_bytes,
                                 payload_bytes=args.payload_bytes,
                                 recording_bytes=args.recording_bytes,
                                 max_body=args.max_body or DEFAULT_MAX_BODY,
                                 admin_from=args.admin_from,
                                 rate_limit=args.rate_limit)
    except ValueError as exc:
        print(f"mock-planhat: error: {exc}", file=sys.stderr)
        return 2
    app = create_app(config)
    if args.autosave is not None and not args.state:
        print("mock-planhat: error: --autosave needs --state FILE", file=sys.stderr)
        return 2
    save = None
    state_loaded = False
    if args.state:
        from .app import fake_of
        from .state_file import StateFile

        state = StateFile(args.state, fake_of(app).registry)
        try:
            loaded = state.load()
        except ValueError as exc:
            print(f"mock-planhat: error: --state {exc}", file=sys.stderr)
            return 2
        state_loaded = os.path.exists(args.state)
        if loaded:
            print(f"mock-planhat: loaded {loaded} tenant(s) from {args.state}", file=sys.stderr)
        save = state.save
    if args.init and state_loaded:
        print(f"mock-planhat: --init skipped: the state comes from {args.state}",
              file=sys.stderr)
    elif args.init:
        from .init_files import InitError, apply

        try:
            applied = apply(app, args.init, args.init_steps)
        except InitError as exc:
            print(f"mock-planhat: error: {exc}", file=sys.stderr)
            return 2
        print(f"mock-planhat: applied {len(applied)} init file(s)", file=sys.stderr)
    elif args.init_steps and not args.init:
        print("mock-planhat: error: --init-steps needs --init PATH", file=sys.stderr)
        return 2
    try:
        server = Server(app, args.host, args.port, quiet=args.quiet,
                        read_timeout=args.read_timeout or None, server=args.server,
                        busy_poll=args.busy_poll / 1e6)
    except ValueError as exc:
        print(f"mock-planhat: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        # waitress appends "(while attempting to bind on address ...)": the line says it already
        why = (exc.strerror or str(exc)).partition(" (while attempting to bind")[0]
        print(f"mock-planhat: error: cannot listen on {args.host}:{args.port}: {why}",
              file=sys.stderr)
        return 2
    stop = catch_signals()
    print(f"mock-planhat listening on {server.url}\n"
          f"  tenant token: {config.tenant_token}   (tracking: POST {server.url}/analytics/"
          f"{config.tenant_token}; Segment write key)\n"
          f"  API token:    {config.api_token}   (REST: Authorization: Bearer "
          f"{config.api_token})\n"
          f"  dashboard:    {server.url}/   (admin API: {server.url}/__admin/state)",
          flush=True)
    limit = parse_rate_limit(config.rate_limit)
    if limit:
        print(f"  rate limit:   {limit.text} per token (429 with "
              "Retry-After on the REST paths and /dock/segment)", flush=True)
    print(f"  server:       {server.description}", flush=True)
    if server.note:
        print(f"  note:         {server.note}", flush=True)
    return run_until_signal(server, save, args.autosave, stop)


def _unknown_command(word: str) -> int:
    close = difflib.get_close_matches(word, COMMANDS, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    print(f"usage: mock-planhat [COMMAND] [options]\nmock-planhat: error: unknown command "
          f"{word!r} (choose from {', '.join(COMMANDS)}).{hint} Run 'mock-planhat --help'.",
          file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and not argv[0].startswith("-") and argv[0] not in COMMANDS:
        return _unknown_command(argv[0])
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help", "--version")):
        argv.insert(0, "serve")
    parser = build_parser(scenario_commands=argv[0] != "serve")
    if argv[0] == "serve":
        apply_env(parser.serve_parser)
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve(args)
    return args.handler(args)
