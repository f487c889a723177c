"""The ``nbbs`` command."""
