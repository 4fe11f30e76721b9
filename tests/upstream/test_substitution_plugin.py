"""The substitution plugin itself: a green upstream run must mean ctxsnap really ran in the upstream tests.

Each test runs a small suite through ``ctxsnap_substitution`` in a pytest subprocess (the plugin replaces
module attributes of Flask and anyio for the whole process), the way ``tests/upstream/run.py`` runs the real
upstream suites.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

HERE = Path(__file__).resolve().parent


@pytest.fixture
def plugin_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])))


@pytest.mark.usefixtures("plugin_path")
def test_flask_tests_get_ctxsnap_even_when_they_import_the_name(pytester: pytest.Pytester) -> None:
    # Bound at import, before any test runs: the plugin must already have replaced it. Flask's own function
    # would give the worker an empty g (pallets/flask#3306) and let its write reach nothing; ctxsnap's gives it
    # a private copy.
    pytester.makepyfile(
        test_view="""
        import threading
        import flask
        from flask import copy_current_request_context

        def test_worker_gets_a_private_copy_of_g():
            app = flask.Flask("t")
            seen = []
            with app.test_request_context("/?q=1"):
                flask.g.user = "ada"

                @copy_current_request_context
                def work():
                    seen.append((flask.g.user, flask.request.args["q"]))
                    flask.g.user = "changed in the worker"

                worker = threading.Thread(target=work)
                worker.start()
                worker.join()
                assert seen == [("ada", "1")]
                assert flask.g.user == "ada"
        """
    )
    result = pytester.runpytest_subprocess("-p", "ctxsnap_substitution", "--ctxsnap-substitute=flask")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*copy_current_request_context ran 1 time(s), called by 1 test(s)"])
    assert result.ret == 0


@pytest.mark.usefixtures("plugin_path")
def test_a_run_that_never_calls_the_substitute_fails(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_nothing="def test_passes():\n    assert True\n")
    result = pytester.runpytest_subprocess("-p", "ctxsnap_substitution", "--ctxsnap-substitute=flask")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*no test called the substituted flask:copy_current_request_context*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED


@pytest.mark.usefixtures("plugin_path")
def test_anyio_calls_reach_ctxsnap_and_a_stale_skip_list_fails_a_whole_run(pytester: pytest.Pytester) -> None:
    # The worker's ContextVar write stays in the worker with ctxsnap (a fresh copy per run); ctxsnap's own call
    # into anyio.to_thread.run_sync goes to anyio's function, or this would recurse until it overflowed.
    pytester.makepyfile(
        test_threads="""
        import contextvars
        import pytest
        from anyio import to_thread

        var = contextvars.ContextVar("var", default="parent")

        @pytest.mark.anyio
        async def test_run_sync():
            def work():
                seen = var.get()
                var.set("worker")
                return seen

            assert await to_thread.run_sync(work) == "parent"
            assert var.get() == "parent"

        @pytest.fixture
        def anyio_backend():
            return "asyncio"
        """
    )
    args = ["-p", "ctxsnap_substitution", "--ctxsnap-substitute=anyio", "-p", "anyio"]
    narrowed = pytester.runpytest_subprocess(*args)
    narrowed.assert_outcomes(passed=1)
    narrowed.stdout.fnmatch_lines(["*run_sync ran 1 time(s), called by 1 test(s)"])
    assert narrowed.ret == 0
    whole = pytester.runpytest_subprocess(*args, "--ctxsnap-whole-run")
    whole.assert_outcomes(passed=1)
    whole.stdout.fnmatch_lines(["*test_from_async[[]trio-trio[]] is listed in ctxsnap_substitution.py but *"])
    assert whole.ret == pytest.ExitCode.TESTS_FAILED
