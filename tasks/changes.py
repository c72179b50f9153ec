"""Whether an earlier operation of this run changes (or changed) the host."""

from __future__ import annotations

from pyinfra import state
from pyinfra.api.operation import OperationMeta


def changes(operation: OperationMeta) -> bool:
    """Planned change while the run is prepared, actual change once it executes. (Asked at
    execute time, ``will_change`` of an operation already run re-plans it against the host it
    changed, and finds nothing to do.)"""
    return operation.did_change() if state.is_executing else operation.will_change
