"""``--init PATH``: scenario files applied to the default tenant at start (seed data).

Files are taken in file-name order (a folder: every *.yaml, *.yml, *.json in it, recursively).
Every file is checked before anything is applied; a broken one stops the start with the
validator's ``file:line:column`` messages. Each file's ``given`` (snapshot, companies, end
users) is applied; with ``steps``, its steps and expectations run too, and a failing one
stops the start.
"""

from __future__ import annotations


class InitError(Exception):
    """Why the init files cannot be applied: one line per problem."""


def apply(app, paths, steps: bool = False) -> list[str]:
    """Apply the init files to ``app``'s default tenant; returns the applied files' names."""
    from .app import fake_of
    from .scenario import ScenarioError, Target, TenantHandle, load_scenario
    from .scenario.load import find_files
    from .scenario.run import apply_scenario

    try:
        files = find_files(paths)
    except FileNotFoundError as exc:
        raise InitError(f"--init {exc}: no such file or folder") from None
    if not files:
        raise InitError(f"--init {', '.join(map(str, paths))}: no scenario files (*.yaml, "
                        "*.yml, *.json)")
    scenarios, problems = [], []
    for path in files:
        try:
            scenarios.append(load_scenario(path))
        except ScenarioError as exc:
            problems += [str(p) for p in exc.problems]
    if problems:
        raise InitError("\n".join(problems))
    config = fake_of(app).config
    target = Target(app=app)
    try:
        tenant = TenantHandle(target, config.tenant_token, config.api_token)
        for scenario in scenarios:
            result = apply_scenario(scenario, tenant, steps)
            if not result.passed:
                raise InitError(f"--init {scenario.file}:\n{result.render_failures()}")
    finally:
        target.close()
    return [s.file for s in scenarios]
