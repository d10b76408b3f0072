"""Errors a user can cause. CLIs print ``str(error)`` as one line and exit nonzero."""


class FoldlineError(Exception):
    """Base of every error Foldline raises for bad input (never for its own bugs)."""


class ModelError(FoldlineError):
    """An integer model that breaks the integer contract (names the layer and the rule)."""


class AccumulatorOverflowError(ModelError):
    """A layer whose proven accumulator bound does not fit the allowed width."""
