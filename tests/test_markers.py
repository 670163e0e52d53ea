"""The ``integration`` marker follows what a test starts (``tests/conftest.py``)."""

from __future__ import annotations

from tests.conftest import _starts_things


def test_a_module_starting_the_devstack_is_integration_and_a_pure_one_is_not() -> None:
    assert _starts_things("tests.engine.test_reconciler_devstack")
    assert _starts_things("tests.app.test_drift_devstack")  # through tests.engine.test_reconciler_devstack
    assert _starts_things("tests.bench.test_propagation")  # through bench.propagation
    assert not _starts_things("tests.engine.test_planner")
    assert not _starts_things("tests.engine.test_sources")
