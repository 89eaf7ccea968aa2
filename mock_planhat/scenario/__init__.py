"""Scenario files: load and validate them, plan their Segment calls, run them.

    from mock_planhat.scenario import load_scenario, run_scenario
    result = run_scenario(load_scenario("scenarios/identify_creates.yaml"))
    assert result.passed, result.render()
"""

from .load import Problem, Scenario, ScenarioError, load_scenario, schema
from .plan import plan, planned_calls
from .run import ScenarioResult, Target, TenantHandle, run_file, run_scenario

__all__ = [
    "Problem",
    "Scenario",
    "ScenarioError",
    "ScenarioResult",
    "Target",
    "TenantHandle",
    "load_scenario",
    "plan",
    "planned_calls",
    "run_file",
    "run_scenario",
    "schema",
]
