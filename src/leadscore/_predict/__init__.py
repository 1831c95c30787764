"""Predictive scoring: learn conversion from history, explain it, and build
and check rule models from the same data (issue 5). Private: the CLI and the
web app call it; nothing here is part of the public API yet."""
