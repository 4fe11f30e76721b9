"""Every refusal a carrier raises, each triggered for real: its key words, the house style, and no value shown.

The house style (issue 13): the first sentence says what is wrong in under 12 words, the second gives the way
out. Carried values are often identities, so no message shows one (only names, types and sizes).
"""

from __future__ import annotations

import contextvars
import itertools
import json
import pickle
import types
import warnings
from collections.abc import Callable
from typing import Any

import pytest

import ctxsnap

_names = itertools.count()
SHOWN = "VALUE-SHOWN"

REQUEST_ID: contextvars.ContextVar[Any] = contextvars.ContextVar("request_id")
WHEN: contextvars.ContextVar[Any] = contextvars.ContextVar("when")


def make(*variables: contextvars.ContextVar[Any], **options: Any) -> ctxsnap.Carrier:
    return ctxsnap.Carrier(f"messages-{next(_names)}", vars=list(variables), **options)


def export_with(carrier: ctxsnap.Carrier, value: Any, var: contextvars.ContextVar[Any] = REQUEST_ID) -> str:
    def body() -> str:
        var.set(value)
        return carrier.export()

    return str(contextvars.Context().run(body))


def envelope(carrier: ctxsnap.Carrier, data: Any, **fields: Any) -> str:
    return json.dumps({"v": 1, "c": carrier.name, "d": data, **fields})


def assert_house_style(message: str) -> None:
    problem, separator, way_out = message.partition(". ")
    assert separator and way_out.strip(), f"no second sentence with the way out: {message!r}"
    assert len(problem.split()) < 12, f"first sentence has {len(problem.split())} words: {problem!r}"
    assert SHOWN not in message


def a_lost_carrier() -> None:
    # Created inside a function, so gone once pickled: the worker's import of its module does not recreate it.
    data = pickle.dumps(make(REQUEST_ID))
    pickle.loads(data)


def signed_then_tampered() -> None:
    carrier = make(REQUEST_ID, secret_key="k")
    carrier.decode(export_with(carrier, "alice").replace("alice", "mallory"))


def signed_then_unsigned() -> None:
    carrier = make(REQUEST_ID, secret_key="k")
    carrier.decode(envelope(carrier, {"vars": {"request_id": "r"}}))


def another_carriers_payload() -> None:
    make(REQUEST_ID).decode(export_with(make(REQUEST_ID), "r"))


def a_failing_decode() -> None:
    carrier = make(WHEN, codecs={WHEN: (str, int)})
    carrier.decode(export_with(carrier, SHOWN, WHEN))


def g_without_an_app() -> None:
    carrier = make(g=["user_id"])
    carrier.run(envelope(carrier, {"g": {"user_id": SHOWN}}), print)


def g_in_an_app_no_provider_knows() -> None:
    carrier = make(g=["user_id"], app=types.SimpleNamespace(app_context=None, config={}))
    carrier.run(envelope(carrier, {"g": {"user_id": SHOWN}}), print)


def an_oversize_payload() -> None:
    export_with(make(REQUEST_ID, max_bytes=100), SHOWN * 20)


def a_second_carrier_named_like_the_first() -> None:
    first = make()  # held: the registry keeps carriers weakly
    ctxsnap.Carrier(first.name)


def a_raising_encode() -> None:
    export_with(make(WHEN, codecs={WHEN: (lambda value: 1 / 0, int)}), SHOWN, WHEN)


def an_encode_returning_a_set() -> None:
    export_with(make(WHEN, codecs={WHEN: (lambda value: {value}, list)}), SHOWN, WHEN)


REFUSALS: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
    # declaration
    ("name", lambda: ctxsnap.Carrier("has space"), TypeError, r"needs a short name.*letters, digits"),
    (
        "vars not a list",
        lambda: ctxsnap.Carrier("x", vars=REQUEST_ID),  # type: ignore[arg-type]
        TypeError,
        r"takes a list, got ContextVar\. Wrap a single item",
    ),
    (
        "vars of strings",
        lambda: make("request_id"),  # type: ignore[arg-type]
        TypeError,
        r"takes ContextVar objects, got str\. Pass the variables",
    ),
    (
        "two variables, one name",
        lambda: make(REQUEST_ID, contextvars.ContextVar("request_id")),
        ValueError,
        r"two ContextVars named 'request_id'\. Give each a name",
    ),
    ("g names", lambda: make(g=["not an identifier"]), TypeError, r"takes attribute names.*Pass identifiers"),
    ("g of objects", lambda: make(g=[object()]), TypeError, r"takes attribute names, got object\."),
    (
        "allow_sensitive entries",
        lambda: make(allow_sensitive=[1]),
        TypeError,
        r"takes names or ContextVars, got int\. List what you mean to carry",
    ),
    (
        "credential",
        lambda: make(contextvars.ContextVar("password")),
        ctxsnap.UnportableValueError,
        r"'password' looks like a credential\. If it is not one, pass allow_sensitive=\['password'\]",
    ),
    (
        "max_bytes",
        lambda: make(max_bytes=0),
        TypeError,
        r"max_bytes=\.\.\.\) takes a positive int\. Pass one such as max_bytes=8192",
    ),
    (
        "max_depth",
        lambda: make(max_depth=True),
        TypeError,
        r"max_depth=\.\.\.\) takes a positive int\. Pass one such as max_depth=16",
    ),
    ("secret_key", lambda: make(secret_key=b""), TypeError, r"secret_key=\.\.\.\) takes a non-empty str or bytes"),
    (
        "codec shape",
        lambda: make(REQUEST_ID, codecs={REQUEST_ID: str}),
        TypeError,
        r"codec for 'request_id' must be a pair \(encode, decode\)\. Pass two functions",
    ),
    (
        "codec for a variable not carried",
        lambda: make(codecs={WHEN: (str, str)}),
        ValueError,
        r"names the ContextVar 'when', which it does not carry\. Add it to vars=",
    ),
    (
        "codec for an unknown name",
        lambda: make(codecs={"user_id": (str, str)}),
        ValueError,
        r"names 'user_id', not one of its g attributes\. Add it to g=",
    ),
    ("a name taken", a_second_carrier_named_like_the_first, ValueError, r"already exists.*name of its own"),
    (
        "a carrier a worker cannot find",
        a_lost_carrier,
        LookupError,
        r"No ctxsnap carrier named 'messages-\d+' in this process\. Define it at the top level",
    ),
    # export
    (
        "an object",
        lambda: export_with(make(REQUEST_ID), {SHOWN}),
        ctxsnap.UnportableValueError,
        r"Cannot carry the ContextVar 'request_id': a builtins\.set is not portable\. Declare a codec",
    ),
    (
        "NaN",
        lambda: export_with(make(REQUEST_ID), [float("nan")]),
        ctxsnap.UnportableValueError,
        r"'request_id': it holds NaN or infinity\. Declare a codec",
    ),
    (
        "a key",
        lambda: export_with(make(REQUEST_ID), {1: SHOWN}),
        ctxsnap.UnportableValueError,
        r"'request_id': dict key of type int\. Declare a codec",
    ),
    (
        "depth",
        lambda: export_with(make(REQUEST_ID, max_depth=1), [[SHOWN]]),
        ctxsnap.UnportableValueError,
        r"'request_id': nested deeper than max_depth=1\. Declare a codec",
    ),
    (
        "size",
        an_oversize_payload,
        ctxsnap.UnportableValueError,
        r"payload is \d+ bytes, over max_bytes=100\. Shrink the largest value, the ContextVar 'request_id'",
    ),
    (
        "a raising encode",
        a_raising_encode,
        ctxsnap.UnportableValueError,
        r"Could not encode the ContextVar 'when': its codec raised ZeroDivisionError\. Fix the codec's encode",
    ),
    (
        "an encode returning a set",
        an_encode_returning_a_set,
        ctxsnap.UnportableValueError,
        r"a builtins\.set is not portable\. Make its codec's encode return",
    ),
    (
        "wrap",
        lambda: make().wrap(42),  # type: ignore[arg-type]
        TypeError,
        r"Carrier\.wrap\(\) takes a callable, got int\. Pass the function",
    ),
    # worker
    (
        "not a str",
        lambda: make().decode(42),  # type: ignore[arg-type]
        ctxsnap.PayloadError,
        r"takes a payload str, got int\. Pass the str that Carrier\.export\(\) returned",
    ),
    (
        "not a payload",
        lambda: make().decode("{}"),
        ctxsnap.PayloadError,
        r"got a str that is not a ctxsnap payload\. Pass the str",
    ),
    (
        "a version",
        lambda: make().decode('{"v":2,"c":"x","d":{}}'),
        ctxsnap.PayloadError,
        r"cannot read payload version 2, only 1\. Run the same ctxsnap version",
    ),
    (
        "another carrier",
        another_carriers_payload,
        ctxsnap.PayloadError,
        r"got a payload of the carrier 'messages-\d+'\. Run it with the carrier that exported it",
    ),
    ("unsigned", signed_then_unsigned, ctxsnap.PayloadError, r"refused an unsigned payload\. Give the exporting"),
    (
        "tampered",
        signed_then_tampered,
        ctxsnap.PayloadError,
        r"signature does not match\. Use one secret_key on both sides",
    ),
    (
        "a section",
        lambda: (lambda c: c.decode(envelope(c, {"vars": [SHOWN]})))(make()),
        ctxsnap.PayloadError,
        r"malformed section 'vars'\. Pass the str",
    ),
    (
        "a failing decode",
        a_failing_decode,
        ctxsnap.PayloadError,
        r"Could not decode the ContextVar 'when': its codec raised ValueError\. Fix the codec's decode",
    ),
    (
        "run",
        lambda: make().run('{"v":1}', 42),  # type: ignore[arg-type]
        TypeError,
        r"Carrier\.run\(\) takes a callable to run, got int\. Pass the payload, then the function",
    ),
    ("g without an app", g_without_an_app, RuntimeError, r"carries g but has no app for it\. Pass app="),
    (
        "g in an app no provider knows",
        g_in_an_app_no_provider_knows,
        TypeError,
        r"No ctxsnap provider can restore g in a SimpleNamespace\. Pass a Flask or Quart app",
    ),
]


@pytest.mark.parametrize(
    ("trigger", "error", "key_words"), [case[1:] for case in REFUSALS], ids=[case[0] for case in REFUSALS]
)
def test_refusal(trigger: Callable[[], Any], error: type[Exception], key_words: str) -> None:
    with pytest.raises(error, match=key_words) as caught:
        contextvars.Context().run(trigger)
    assert_house_style(str(caught.value))


def test_a_worker_warns_about_names_it_does_not_declare_in_the_house_style() -> None:
    carrier = make(REQUEST_ID)
    payload = envelope(carrier, {"vars": {"request_id": "r", "extra": SHOWN}, "g": {"user_id": SHOWN}})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        carrier.decode(payload)
    message = str(caught[0].message)
    assert_house_style(message)
    assert message.startswith(f"Carrier {carrier.name!r} ignored names it does not declare. Deploy the same")
    assert message.endswith("the ContextVar 'extra', the g attribute 'user_id'.")
