"""The exceptions the operator sees as one line: bad input, and a step that failed on a host."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from pyinfra import host, logger
from pyinfra.api.exceptions import DeployError, NestedOperationError

P = ParamSpec("P")
R = TypeVar("R")


class SettingsError(DeployError):
    """Bad input: pyinfra prints it as one line and exits non-zero before any change."""


class StepFailed(RuntimeError):
    """A step run by a python.call operation failed; the message says what, in one line."""


def failing_in_one_line(function: Callable[P, R]) -> Callable[P, R]:
    """For python.call: a StepFailed raised by ``function`` fails its operation with the
    message as one red line (pyinfra logs a traceback for any other exception of a callback)."""

    @functools.wraps(function)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except StepFailed as error:
            host.log_styled(str(error), fg="red", log_func=logger.error)
            raise NestedOperationError(str(error)) from None

    return call
