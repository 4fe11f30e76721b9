"""Every message ctxsnap raises or warns says what is wrong in under 12 words, then the way out.

The house style (issue 13, item 5; anyio's and Flask's errors read the same way): the first sentence names the
problem briefly enough to be read at a glance in a traceback, and a second sentence says what to do. The walk
below reads the package's source, not its behaviour: every ``raise SomeError(<message>)``, every exception
built with a message (``ProviderError(..., hint=...)`` included) and every ``warn(<message>)`` whose message is
a string literal, an f-string or a concatenation of those. A placeholder (``{name!r}``) counts as one word,
whatever it expands to.

Run as a script it prints each message's first-sentence length, longest first, and the median and maximum:
``cd tests && python -m reliability.test_message_style``.
"""

from __future__ import annotations

import ast
import re
import statistics
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "ctxsnap"
#: The first sentence of a message has fewer words than this.
WORD_LIMIT = 12

#: Messages held to another standard, by how they start, with the reason.
EXEMPT = {
    # The same warning anyio gives for the same argument, to the letter, so that a filter written for anyio's
    # warning catches ours too (tests/adapters/test_anyio.py compares the two).
    "The `cancellable=` keyword argument to `anyio.to_thread.run_sync`": "anyio's own wording",
    # Python's own wording for a missing attribute, which ``hasattr`` and friends rely on.
    "module {…} has no attribute": "Python's own wording",
    "{…} object has no attribute": "Python's own wording",
    # Raised inside json.loads and caught at once (``_payload._parse``): no user ever reads it.
    "{…} is not portable": "never leaves ctxsnap",
}

#: A sentence ends at ".", "!" or "?" followed by white space or the end (so "ctxsnap.capture" does not end one).
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


@dataclass(frozen=True)
class Message:
    where: str
    text: str

    @property
    def first_sentence(self) -> str:
        match = _SENTENCE_END.search(self.text)
        return self.text if match is None else self.text[: match.end()]

    @property
    def words(self) -> int:
        return len(self.first_sentence.split())

    @property
    def has_way_out(self) -> bool:
        return bool(self.text[len(self.first_sentence) :].strip())


def _render(node: ast.expr) -> str | None:
    """The text of a message expression, placeholders as ``{…}``; None when it is not built from literals."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            rendered = _render(value) if isinstance(value, ast.Constant) else "{…}"
            parts.append(rendered or "")
        return "".join(parts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _render(node.left), _render(node.right)
        if left is not None and right is not None:
            return left + right
    return None


def _callee(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _is_message_call(call: ast.Call) -> bool:
    name = _callee(call)
    return name == "warn" or name.endswith(("Error", "Exception", "Warning"))


def _message_of(call: ast.Call) -> ast.expr | None:
    # ProviderError states the problem itself (provider, phase, cause); its ``hint`` is the way out.
    if _callee(call) == "ProviderError":
        return None
    if call.args:
        return call.args[0]
    return next((k.value for k in call.keywords if k.arg in ("message", "msg")), None)


def _exempt(message: Message) -> bool:
    return message.text.startswith(tuple(EXEMPT))


def messages(package: Path = PACKAGE) -> list[Message]:
    found = []
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not _is_message_call(node):
                continue
            expression = _message_of(node)
            text = None if expression is None else _render(expression)
            if text is not None:
                found.append(Message(f"{path.relative_to(package.parent)}:{node.lineno}", text))
    return found


def test_the_walk_finds_the_package_messages() -> None:
    # Guards the test below against passing vacuously, should a refactoring hide the messages from the walk.
    found = messages()
    assert len(found) > 80
    assert any("register_provider() got the class" in m.text for m in found)


def test_every_message_states_the_problem_in_under_12_words() -> None:
    too_long = [
        f"{m.where}: {m.words} words: {m.first_sentence!r}"
        for m in messages()
        if m.words >= WORD_LIMIT and not _exempt(m)
    ]
    assert not too_long, "shorten the first sentence of:\n" + "\n".join(too_long)


def test_every_message_says_the_way_out_after_the_problem() -> None:
    missing = [f"{m.where}: {m.text!r}" for m in messages() if not m.has_way_out and not _exempt(m)]
    assert not missing, "add the way out, as a second sentence, to:\n" + "\n".join(missing)


def report() -> None:
    found = sorted(messages(), key=lambda m: -m.words)
    for message in found:
        print(f"{message.words:3d}  {message.where}  {message.first_sentence}")
    counts = [m.words for m in found]
    print(f"{len(counts)} messages; first sentence: median {statistics.median(counts)} words, max {max(counts)}")


if __name__ == "__main__":
    report()
