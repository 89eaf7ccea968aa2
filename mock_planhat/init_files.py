"""``--init PATH``: scenario files applied to the fake's tenants at start (seed data).

Files are taken in file-name order (a folder: every *.yaml, *.yml, *.json in it, recursively).
Every file is checked before anything is applied; a broken one stops the start with the
validator's ``file:line:column`` messages. Each file's ``given`` (snapshot, companies, end
users) is applied; with ``steps``, its steps and expectations run too, and a failing one
stops the start. The seeded tenant's recording (``GET /__admin/scenario``) starts after.

The tenant is the file's own: ``settings.tenant_token`` names it (created at start, with the
file's ``settings.api_token`` and ``tenant`` options, unless a tenant has that token already);
a file that names none seeds the default tenant. Several files may seed one tenant.
"""

from __future__ import annotations


class InitError(Exception):
    """Why the init files cannot be applied: one line per problem."""


def apply(app, paths, steps: bool = False) -> list[str]:
    """Apply the init files to ``app``'s default tenant; returns the applied files' names."""
    from .app import fake_of
    from .recording import forget
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
    registry = fake_of(app).registry
    target = Target(app=app)
    try:
        for scenario in scenarios:
            tenant = _tenant_of(scenario, registry)
            result = apply_scenario(scenario, TenantHandle(target, tenant.tenant_token,
                                                           tenant.api_token), steps)
            if not result.passed:
                raise InitError(f"--init {scenario.file}:\n{result.render_failures()}")
            forget(tenant)  # the seed is where a recording starts from, not part of it
    finally:
        target.close()
    return [s.file for s in scenarios]


def _tenant_of(scenario, registry):
    """The tenant the file seeds: the one its ``settings.tenant_token`` names (made when no
    tenant has it), else the default tenant."""
    from .ratelimit import parse_rate_limit
    from .tenants import TokenConflict

    settings = scenario.data.get("settings") or {}
    token = settings.get("tenant_token")
    if token is None:
        return registry.default
    tenant = registry.by_tenant_token(token)
    api_token = settings.get("api_token")
    if tenant is not None:
        if api_token is not None and api_token != tenant.api_token:
            raise InitError(f"--init {scenario.where(('settings', 'api_token'))}: tenant "
                            f"{token!r} exists already with another API token")
        return tenant
    options = scenario.data.get("tenant") or {}
    limit = options.get("rateLimit")
    try:
        return registry.create(options.get("unassigned"), token, api_token,
                               options.get("emailMatch"),
                               parse_rate_limit(limit) if limit is not None else True)
    except TokenConflict as exc:
        where = "api_token" if exc.field == "apiToken" else "tenant_token"
        raise InitError(f"--init {scenario.where(('settings', where))}: {exc}") from None
