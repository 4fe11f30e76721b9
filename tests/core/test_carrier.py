"""``ctxsnap.Carrier`` without any framework: the codec, refusals, signing, versioning, repr, and run semantics."""

from __future__ import annotations

import contextvars
import itertools
import json
import pickle
import warnings
from typing import Any

import pytest

import ctxsnap

_names = itertools.count()


def new_var(name: str) -> contextvars.ContextVar[Any]:
    return contextvars.ContextVar(name)


def make(*variables: contextvars.ContextVar[Any], **options: Any) -> ctxsnap.Carrier:
    # Carrier names are process-wide (a worker finds a carrier by name): one per test.
    return ctxsnap.Carrier(f"core-{next(_names)}", vars=list(variables), **options)


def in_fresh(fn: Any, *args: Any) -> Any:
    return contextvars.Context().run(fn, *args)


def export_with(carrier: ctxsnap.Carrier, **values: Any) -> str:
    by_name = {var.name: var for var in carrier.vars}

    def body() -> str:
        for name, value in values.items():
            by_name[name].set(value)
        return carrier.export()

    return str(in_fresh(body))


REQUEST_ID = new_var("request_id")
TENANT = new_var("tenant")


# -- the codec -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "text",
        "ünïcode ✓",
        0,
        -(2**70),
        1.5,
        -0.0,
        True,
        False,
        None,
        [],
        {},
        [1, "a", None, [2.5]],
        {"a": {"b": [1, {"c": None}]}},
    ],
)
def test_portable_values_round_trip(value: Any) -> None:
    carrier = make(REQUEST_ID)
    payload = export_with(carrier, request_id=value)
    assert in_fresh(carrier.run, payload, REQUEST_ID.get) == value


def test_tuples_arrive_as_lists() -> None:
    carrier = make(REQUEST_ID)
    payload = export_with(carrier, request_id=(1, (2, "x")))
    assert in_fresh(carrier.run, payload, REQUEST_ID.get) == [1, [2, "x"]]


def test_payload_is_versioned_compact_json() -> None:
    carrier = make(REQUEST_ID, TENANT)
    payload = export_with(carrier, request_id="r1")
    assert type(payload) is str
    assert json.loads(payload) == {"v": 1, "c": carrier.name, "d": {"vars": {"request_id": "r1"}}}
    assert " " not in payload


def test_unset_variables_are_not_carried_and_stay_unset() -> None:
    carrier = make(REQUEST_ID, TENANT)
    payload = export_with(carrier, request_id="r1")
    assert in_fresh(carrier.run, payload, lambda: (REQUEST_ID.get(None), TENANT.get("unset"))) == ("r1", "unset")


def test_custom_codec_for_one_variable() -> None:
    import datetime

    when = new_var("when")
    carrier = make(when, codecs={when: (datetime.date.isoformat, datetime.date.fromisoformat)})
    payload = export_with(carrier, when=datetime.date(2026, 12, 3))
    assert json.loads(payload)["d"]["vars"] == {"when": "2026-12-03"}
    assert in_fresh(carrier.run, payload, when.get) == datetime.date(2026, 12, 3)


def test_codec_output_is_checked_too() -> None:
    when = new_var("when")
    carrier = make(when, codecs={when: (lambda v: v, lambda v: v)})
    with pytest.raises(ctxsnap.UnportableValueError, match="Make its codec's encode return"):
        export_with(carrier, when=object())


def test_codec_declarations_are_checked() -> None:
    with pytest.raises(TypeError, match="must be a pair \\(encode, decode\\)"):
        make(REQUEST_ID, codecs={REQUEST_ID: str})
    with pytest.raises(ValueError, match="which it does not carry"):
        make(REQUEST_ID, codecs={TENANT: (str, str)})
    with pytest.raises(ValueError, match="not one of its g attributes"):
        make(REQUEST_ID, codecs={"user_id": (str, str)})


# -- refusals --------------------------------------------------------------------------------------------------


class Secretive:
    def __repr__(self) -> str:
        return "VALUE-SHOWN"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (Secretive(), "Secretive is not portable"),
        (float("nan"), "holds NaN or infinity"),
        (float("inf"), "holds NaN or infinity"),
        ([1, [float("-inf")]], "holds NaN or infinity"),
        ({1: "VALUE-SHOWN"}, "dict key of type int"),
        ({"VALUE-SHOWN"}, "set is not portable"),
        (b"VALUE-SHOWN", "bytes is not portable"),
    ],
)
def test_unportable_values_are_refused_at_export(value: Any, reason: str) -> None:
    carrier = make(REQUEST_ID)
    with pytest.raises(ctxsnap.UnportableValueError, match=reason) as caught:
        export_with(carrier, request_id=value)
    error = caught.value
    assert isinstance(error, TypeError)
    assert (error.carrier, error.variable) == (carrier.name, "the ContextVar 'request_id'")
    assert "Declare a codec for it" in str(error)
    assert "VALUE-SHOWN" not in str(error) and "nan" not in str(error).lower().replace("nan or", "")


def test_depth_limit() -> None:
    carrier = make(REQUEST_ID, max_depth=3)
    export_with(carrier, request_id=[[["ok"]]])
    with pytest.raises(ctxsnap.UnportableValueError, match="deeper than max_depth=3"):
        export_with(carrier, request_id=[[[["too deep"]]]])


def test_oversize_payload_names_the_largest_value() -> None:
    carrier = make(REQUEST_ID, TENANT, max_bytes=200)
    with pytest.raises(
        ctxsnap.UnportableValueError, match="over max_bytes=200.*the ContextVar 'tenant'"
    ) as caught:
        export_with(carrier, request_id="small", tenant="x" * 300)
    assert "xxxx" not in str(caught.value)
    assert caught.value.variable == "the ContextVar 'tenant'"


def test_default_max_bytes_is_8_kib() -> None:
    carrier = make(REQUEST_ID)
    assert carrier.max_bytes == 8192
    export_with(carrier, request_id="x" * 8000)
    with pytest.raises(ctxsnap.UnportableValueError, match="over max_bytes=8192"):
        export_with(carrier, request_id="x" * 8200)


@pytest.mark.parametrize(
    "name",
    [
        "authorization",
        "Cookie",
        "password",
        "db_passwd",
        "client_secret",
        "csrf_token",
        "session_id",
        "api_key",
        "ApiKey",
        "x-api-key",
    ],
)
def test_credential_names_are_refused_at_declaration(name: str) -> None:
    with pytest.raises(ctxsnap.UnportableValueError, match=f"{name!r} looks like a credential"):
        make(new_var(name))
    with pytest.raises(ctxsnap.UnportableValueError, match="allow_sensitive"):
        make(g=[name.replace("-", "_")])


def test_allow_sensitive_lets_a_named_one_through() -> None:
    session_country = new_var("session_country")
    carrier = make(session_country, allow_sensitive=[session_country, "csrf_token"], g=["csrf_token"])
    assert carrier.vars == (session_country,) and carrier.g == ("csrf_token",)
    assert in_fresh(carrier.run, export_with(carrier, session_country="fr"), session_country.get) == "fr"
    with pytest.raises(ctxsnap.UnportableValueError, match="'session_other'"):
        make(new_var("session_other"), allow_sensitive=["session_country"])


def test_bad_declarations() -> None:
    with pytest.raises(TypeError, match="takes ContextVar objects"):
        make("request_id")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="takes a list"):
        ctxsnap.Carrier(f"core-{next(_names)}", vars=REQUEST_ID)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="takes attribute names"):
        make(g=["not an identifier"])
    with pytest.raises(ValueError, match="two ContextVars named 'request_id'"):
        make(REQUEST_ID, new_var("request_id"))
    with pytest.raises(TypeError, match="needs a short name"):
        ctxsnap.Carrier("has space")
    with pytest.raises(TypeError, match="max_bytes"):
        make(REQUEST_ID, max_bytes=0)
    with pytest.raises(TypeError, match="secret_key"):
        make(REQUEST_ID, secret_key=b"")
    existing = make(REQUEST_ID)
    with pytest.raises(ValueError, match="already exists"):
        ctxsnap.Carrier(existing.name)


# -- signing ---------------------------------------------------------------------------------------------------


def test_signed_payload_runs_and_tampering_is_refused() -> None:
    carrier = make(REQUEST_ID, secret_key="s3cret")
    payload = export_with(carrier, request_id="alice")
    assert "s" in json.loads(payload)
    assert in_fresh(carrier.run, payload, REQUEST_ID.get) == "alice"
    ran: list[str] = []
    forged = payload.replace("alice", "mallory")
    with pytest.raises(ctxsnap.PayloadError, match=f"Carrier {carrier.name!r} refused a payload whose signature"):
        in_fresh(carrier.run, forged, ran.append, "ran")
    unsigned = json.dumps({k: v for k, v in json.loads(payload).items() if k != "s"})
    with pytest.raises(ctxsnap.PayloadError, match="refused an unsigned payload"):
        in_fresh(carrier.run, unsigned, ran.append, "ran")
    assert ran == []


def test_another_key_is_refused() -> None:
    sender = make(REQUEST_ID, secret_key=b"one")
    payload = export_with(sender, request_id="alice")
    receiver = make(REQUEST_ID, secret_key=b"two")
    relabelled = payload.replace(sender.name, receiver.name)
    with pytest.raises(ctxsnap.PayloadError, match="signature does not match"):
        receiver.decode(relabelled)


# -- versions and rolling deploys ------------------------------------------------------------------------------


def test_unknown_version_names_both_versions() -> None:
    carrier = make(REQUEST_ID)
    payload = json.dumps({"v": 2, "c": carrier.name, "d": {}})
    with pytest.raises(ctxsnap.PayloadError, match="cannot read payload version 2, only 1"):
        carrier.run(payload, print)


def test_unknown_names_are_ignored_with_one_warning() -> None:
    carrier = make(REQUEST_ID)
    payload = json.dumps(
        {"v": 1, "c": carrier.name, "d": {"vars": {"request_id": "r", "new_var": 1, "other": 2}, "g": {"x": 1}}}
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert in_fresh(carrier.run, payload, REQUEST_ID.get) == "r"
    assert len(caught) == 1
    assert "ignored what it does not declare: g.x" not in str(caught[0].message)
    assert "the ContextVar 'new_var'" in str(caught[0].message)
    assert "the g attribute 'x'" in str(caught[0].message)


def test_a_section_this_worker_does_not_know_is_ignored_with_one_warning() -> None:
    # A newer sender may carry a section (a provider's) that this worker has no provider for.
    carrier = make(REQUEST_ID)
    payload = json.dumps({"v": 1, "c": carrier.name, "d": {"vars": {"request_id": "r"}, "baggage": {"k": 1}}})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert in_fresh(carrier.run, payload, REQUEST_ID.get) == "r"
    assert [str(warning.message).count("the baggage attribute 'k'") for warning in caught] == [1]


@pytest.mark.parametrize("payload", ["", "not json", "[]", '{"v":1}', 42])
def test_malformed_payloads(payload: Any) -> None:
    carrier = make(REQUEST_ID)
    with pytest.raises(ctxsnap.PayloadError, match=carrier.name):
        carrier.run(payload, print)


def test_payload_of_another_carrier_is_refused() -> None:
    one, two = make(REQUEST_ID), make(REQUEST_ID)
    with pytest.raises(ctxsnap.PayloadError, match=f"payload of the carrier {one.name!r}"):
        two.run(export_with(one, request_id="r"), print)


# -- repr ------------------------------------------------------------------------------------------------------


def test_repr_names_variables_never_values() -> None:
    carrier = make(REQUEST_ID, TENANT, g=["user_id"], secret_key="k")
    payload = in_fresh(lambda: (REQUEST_ID.set("VALUE-1"), carrier.export())[1])
    assert (
        repr(carrier) == f"<ctxsnap.Carrier {carrier.name!r} vars=['request_id', 'tenant'] g=['user_id'] signed>"
    )
    assert repr(payload) == f"<ctxsnap payload v1 of {carrier.name!r} signed: request_id>"
    wrapped = in_fresh(lambda: (REQUEST_ID.set("VALUE-2"), carrier.wrap(len))[1])
    assert "VALUE" not in repr(wrapped) and "request_id" in repr(wrapped)


# -- run semantics ---------------------------------------------------------------------------------------------


def test_run_starts_from_a_copy_of_the_current_context_and_leaves_nothing() -> None:
    carrier = make(REQUEST_ID, TENANT)
    payload = export_with(carrier, request_id="carried")
    attached = new_var("attached_by_tracer")

    def worker() -> tuple[Any, ...]:
        attached.set("span")
        REQUEST_ID.set("worker-own")

        def task() -> tuple[Any, Any]:
            seen = (REQUEST_ID.get(), attached.get())
            TENANT.set("set by task")
            attached.set("changed by task")
            return seen

        seen = carrier.run(payload, task)
        return seen, REQUEST_ID.get(), TENANT.get(None), attached.get()

    assert in_fresh(worker) == (("carried", "span"), "worker-own", None, "span")


def test_errors_from_the_task_propagate_and_nothing_is_left() -> None:
    carrier = make(REQUEST_ID)
    payload = export_with(carrier, request_id="r")

    def task() -> None:
        raise KeyError("boom")

    def worker() -> Any:
        with pytest.raises(KeyError, match="boom"):
            carrier.run(payload, task)
        return REQUEST_ID.get(None)

    assert in_fresh(worker) is None


def test_carrier_pickles_by_name() -> None:
    carrier = make(REQUEST_ID, secret_key="never-pickled")
    data = pickle.dumps(carrier)
    assert b"never-pickled" not in data
    assert pickle.loads(data) is carrier
    wrapped = in_fresh(lambda: (REQUEST_ID.set("w"), carrier.wrap(read_request_id))[1])
    assert pickle.loads(pickle.dumps(wrapped))() == "w"


def read_request_id() -> Any:
    return REQUEST_ID.get(None)


def test_wrapped_call_runs_in_an_empty_context() -> None:
    carrier = make(REQUEST_ID)
    other = new_var("other")
    wrapped = in_fresh(lambda: (REQUEST_ID.set("w"), carrier.wrap(lambda: (REQUEST_ID.get(), other.get(None))))[1])
    assert in_fresh(lambda: (other.set("here"), wrapped())[1]) == ("w", None)


def test_public_names() -> None:
    assert issubclass(ctxsnap.UnportableValueError, TypeError)
    assert issubclass(ctxsnap.PayloadError, ctxsnap.SnapshotError)
    assert {"Carrier", "ProcessPoolExecutor", "UnportableValueError", "PayloadError"} <= set(ctxsnap.__all__)


def test_errors_pickle_with_their_attributes() -> None:
    carrier = make(REQUEST_ID)
    with pytest.raises(ctxsnap.UnportableValueError) as refused:
        export_with(carrier, request_id=object())
    copy = pickle.loads(pickle.dumps(refused.value))
    assert (type(copy), str(copy), copy.carrier, copy.variable) == (
        ctxsnap.UnportableValueError,
        str(refused.value),
        carrier.name,
        "the ContextVar 'request_id'",
    )
    with pytest.raises(ctxsnap.PayloadError) as bad:
        carrier.run("nope", print)
    assert pickle.loads(pickle.dumps(bad.value)).carrier == carrier.name


def test_nan_in_a_received_payload_and_a_failing_decode_are_refused() -> None:
    carrier = make(REQUEST_ID)
    with pytest.raises(ctxsnap.PayloadError, match="not a ctxsnap payload"):
        carrier.run(f'{{"v":1,"c":"{carrier.name}","d":{{"vars":{{"request_id":NaN}}}}}}', print)
    when = new_var("when")
    strict = make(when, codecs={when: (str, int)})
    payload = export_with(strict, when="not a number")
    ran: list[int] = []
    with pytest.raises(ctxsnap.PayloadError, match="Could not decode the ContextVar 'when': its codec raised"):
        in_fresh(strict.run, payload, ran.append, 1)
    assert ran == []


# -- reusing the last payload (ctxsnap._last_payload) -------------------------------------------------------------


def test_export_follows_every_change_of_a_value() -> None:
    carrier = make(REQUEST_ID, TENANT)

    def body() -> list[Any]:
        seen = []
        REQUEST_ID.set(1)
        for value in (1, True, "1", None, 1):  # equal values of other types among them
            REQUEST_ID.set(value)
            seen.append(json.loads(carrier.export())["d"]["vars"])
            seen.append(json.loads(carrier.export())["d"]["vars"])
        TENANT.set("t")
        seen.append(json.loads(carrier.export())["d"]["vars"])
        return seen

    assert in_fresh(body) == [
        *[{"request_id": value} for value in (1, 1, True, True, "1", "1", None, None, 1, 1)],
        {"request_id": 1, "tenant": "t"},
    ]


def test_export_refuses_a_value_that_became_unportable_after_an_export() -> None:
    carrier = make(REQUEST_ID)

    def body() -> None:
        REQUEST_ID.set("r")
        carrier.export()
        REQUEST_ID.set(object())
        carrier.export()

    with pytest.raises(ctxsnap.UnportableValueError, match="ContextVar 'request_id'"):
        in_fresh(body)


def test_export_sees_a_list_changed_in_place() -> None:
    carrier = make(REQUEST_ID)

    def body() -> tuple[str, str]:
        roles = ["reader"]
        REQUEST_ID.set(roles)
        first = carrier.export()
        roles.append("admin")
        return first, carrier.export()

    first, second = in_fresh(body)
    assert json.loads(first)["d"]["vars"] == {"request_id": ["reader"]}
    assert json.loads(second)["d"]["vars"] == {"request_id": ["reader", "admin"]}


def test_a_task_changing_a_carried_list_leaves_the_next_run_of_that_payload_alone() -> None:
    carrier = make(REQUEST_ID)
    payload = export_with(carrier, request_id=["reader"])

    def task() -> list[str]:
        roles: list[str] = REQUEST_ID.get()
        roles.append("admin")
        return list(roles)

    assert in_fresh(carrier.run, payload, task) == ["reader", "admin"]
    assert in_fresh(carrier.run, payload, task) == ["reader", "admin"]


def test_unknown_names_warn_at_every_run_of_the_same_payload() -> None:
    carrier = make(REQUEST_ID)
    payload = json.dumps({"v": 1, "c": carrier.name, "d": {"vars": {"request_id": "r", "new_var": 1}}})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            assert in_fresh(carrier.run, payload, REQUEST_ID.get) == "r"
    assert len(caught) == 3


def test_a_signing_carrier_refuses_a_tampered_copy_of_a_payload_it_ran() -> None:
    carrier = make(REQUEST_ID, secret_key="k")
    payload = export_with(carrier, request_id="user-1")
    assert in_fresh(carrier.run, payload, REQUEST_ID.get) == "user-1"
    with pytest.raises(ctxsnap.PayloadError, match="signature does not match"):
        in_fresh(carrier.run, payload.replace("user-1", "user-2"), REQUEST_ID.get)
    assert in_fresh(carrier.run, payload, REQUEST_ID.get) == "user-1"
