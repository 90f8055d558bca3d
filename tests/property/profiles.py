"""Hypothesis settings for the property tests: a quick default and a heavy profile.

`GRIDMARKET_HYPOTHESIS_PROFILE=heavy` turns the runs up (more examples, longer command
sequences) for nightly or pre-release runs; the default keeps the whole directory under about
a minute on a 2-core machine. Runs are randomised (`derandomize=False`): a failure prints the
shrunk steps and a `@reproduce_failure` blob that replays it (and `--hypothesis-seed=N` when
it could not be shrunk normally); failures are also kept in `.hypothesis/` and retried first
on the next run. Settings are applied per test rather than loaded globally, so other suites
keep their own.
"""

import os

from hypothesis import HealthCheck, settings

_COMMON = {
    "deadline": None,
    "derandomize": False,
    "print_blob": True,
    "suppress_health_check": [
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
}

settings.register_profile(
    "gridmarket-default", max_examples=150, stateful_step_count=100, **_COMMON
)
settings.register_profile("heavy", max_examples=1_500, stateful_step_count=150, **_COMMON)

PROFILE_NAME = os.environ.get("GRIDMARKET_HYPOTHESIS_PROFILE") or "gridmarket-default"
PROFILE = settings.get_profile(PROFILE_NAME)

#: pytest-timeout per test (seconds; 0 = none): the heavy profile runs for many minutes.
TIMEOUT_S = 0 if PROFILE_NAME == "heavy" else 300
