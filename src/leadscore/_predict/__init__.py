"""Predictive scoring: learn conversion from history, explain it, and build
and check rule models from the same data (issue 5). Private: the CLI and the
web app call it; nothing here is part of the public API yet."""

# The target values read as the positive class when --positive is not given
# (_table.POSITIVE_WORDS), in the order --help and docs/cli.md list them.
# Here, not in _table, so that --help does not import numpy.
POSITIVE_SHOWN = ("1", "yes", "y", "true", "t", "won", "converted")
