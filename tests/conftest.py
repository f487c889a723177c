"""Hypothesis profiles: ``default`` keeps the suite fast; ``HYPOTHESIS_PROFILE=deep`` runs far more."""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "default",
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "deep",
    max_examples=3000,
    stateful_step_count=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

DEEP = os.environ.get("HYPOTHESIS_PROFILE") == "deep"
"""True under the deep profile: tests widen their bounds (bigger trees, more threads)."""
