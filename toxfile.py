"""tox's inline plugin (tox loads ``toxfile.py`` beside ``tox.ini``): the Pythons the suite runs on.

The suite envs are ``py310``-``py313``. Locally an env whose interpreter is missing is skipped
(``skip_missing_interpreters``, ``TOX_SKIP_MISSING`` in tox.ini), and this plugin prints one line
naming the envs that run and the ones skipped for want of an interpreter; at least one must run.
Under ``CI=true`` every one of them is required: the run stops at once, naming the missing ones.
"""

from __future__ import annotations

import os
import re

from tox.plugin import impl

SUITE = re.compile(r"^py3\d+$")
RUN_COMMANDS = {"legacy", "le", "run", "r", "run-parallel", "p"}


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _strict(options) -> str:
    """Why every suite env is required ('' when a missing interpreter may be skipped)."""
    if _ci():
        return "CI=true"
    flag = getattr(options, "skip_missing_interpreters", "config")
    if flag == "false":
        return "--skip-missing-interpreters=false"
    if flag == "config" and os.environ.get("TOX_SKIP_MISSING", "").strip().lower() == "false":
        return "TOX_SKIP_MISSING=false"
    return ""


def _found(env: str) -> bool:
    """tox's own interpreter discovery for ``env`` (e.g. py311)."""
    try:
        from python_discovery import get_interpreter
    except ImportError:  # older tox: virtualenv's discovery
        from virtualenv.discovery.builtin import get_interpreter
    try:
        return get_interpreter(env, try_first_with=[], env=os.environ) is not None
    except Exception:  # noqa: BLE001 - an interpreter that cannot be inspected is missing
        return False


def _selected(core_conf, options) -> list[str]:
    chosen = getattr(options, "env", None)
    if chosen is None or getattr(chosen, "is_all", False) or not list(chosen):
        names = [str(name) for name in core_conf["env_list"]]
    else:
        names = list(chosen)
    return [name for name in names if SUITE.match(name)]


@impl
def tox_add_core_config(core_conf, state) -> None:
    from tox.config.loader.memory import MemoryLoader

    if _ci():
        core_conf.loaders.insert(0, MemoryLoader(skip_missing_interpreters=False))
    options = state.conf.options
    if getattr(options, "command", None) not in RUN_COMMANDS:
        return
    suite = _selected(core_conf, options)
    if not suite:
        return
    ran = [env for env in suite if _found(env)]
    missing = [env for env in suite if env not in ran]
    strict = _strict(options)
    if strict and missing:
        raise SystemExit(f"tox: {strict} requires every Python of the suite ({', '.join(suite)}); "
                         f"no interpreter for {', '.join(missing)}")
    if not ran:
        raise SystemExit(f"tox: no interpreter for any suite env ({', '.join(suite)}): install "
                         "one of them, or run 'tox -e py' on the current Python")
    line = f"tox: the suite runs on {', '.join(ran)}"
    if missing:
        line += (f"; skipped, no interpreter: {', '.join(missing)} (CI=true requires all of "
                 f"{', '.join(suite)})")
    print(line, flush=True)
