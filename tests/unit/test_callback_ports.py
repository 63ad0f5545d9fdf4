"""Each connector whose system calls back satisfies its callback use case's Protocol (`hub.ports.CALLBACK_PORTS`),
and says so where mypy checks it (`_callback_check`), so the callbacks' typed look-ups are true."""
from __future__ import annotations

import sys

import pytest

from connectors.registry import connector_class, connector_kinds
from hub.ports import CALLBACK_PORTS, CALLBACKS

WITH_CALLBACK = sorted(k for k in connector_kinds() if getattr(connector_class(k), "callback", None))


def test_every_use_case_has_its_protocol():
    assert set(CALLBACK_PORTS) == set(CALLBACKS) and WITH_CALLBACK


@pytest.mark.parametrize("kind", WITH_CALLBACK)
def test_a_connector_that_takes_callbacks_has_what_its_handler_calls_and_checks_it(kind):
    cls = connector_class(kind)
    port = CALLBACK_PORTS[cls.callback]
    missing = [m for m in dir(port) if not m.startswith("_") and callable(getattr(port, m))
               and not callable(getattr(cls, m, None))]
    assert missing == [], f"{cls.__name__} lacks {missing} of {port.__name__}"
    assert getattr(sys.modules[cls.__module__], "_callback_check", None) is cls
    assert sys.modules[cls.__module__].__annotations__["_callback_check"] == f"type[{port.__name__}]"
