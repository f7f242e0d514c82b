"""Finding the program in a completion (`rlvr.verifiers.code_extract`): no sandbox needed."""

from __future__ import annotations

import time

import pytest

from rlvr.verifiers.code_extract import CodeExtractConfig, extract_code, find_blocks


def fence(code: str, tag: str = "python") -> str:
    return f"```{tag}\n{code}```\n"


def test_last_python_block_by_default() -> None:
    text = "First try:\n" + fence("x = 1\n") + "Better:\n" + fence("x = 2\n") + "Done."
    found = extract_code(text)
    assert (found.code, found.method, found.blocks, found.language) == ("x = 2\n", "fenced", 2, "python")


@pytest.mark.parametrize(
    "choice, expected", [("first", "a = 1\n"), ("last", "b = 22\n"), ("longest", "b = 22\n")]
)
def test_block_choice(choice: str, expected: str) -> None:
    text = fence("a = 1\n") + fence("b = 22\n")
    assert extract_code(text, CodeExtractConfig(block=choice)).code == expected


def test_all_blocks_joined() -> None:
    text = fence("def f():\n    return 1\n") + "and the call:\n" + fence("print(f())\n")
    assert extract_code(text, CodeExtractConfig(block="all")).code == "def f():\n    return 1\n\nprint(f())\n"


@pytest.mark.parametrize("tag", ["python", "py", "python3", "Python", "py3", "python title=sol.py"])
def test_python_tags(tag: str) -> None:
    found = extract_code("Solution:\n" + fence("print(1)\n", tag))
    assert found.code == "print(1)\n"
    assert found.method == "fenced"


def test_plain_fence_is_python_when_nothing_is_tagged() -> None:
    assert extract_code("Here:\n```\nprint(2)\n```\n").code == "print(2)\n"
    assert extract_code("Here:\n```\nprint(2)\n```\n", CodeExtractConfig(untagged=False)).code is None


def test_tagged_python_beats_later_untagged_output_block() -> None:
    text = fence("print(6 * 7)\n") + "Output:\n```\n42\n```\n"
    assert extract_code(text).code == "print(6 * 7)\n"


def test_other_languages_are_ignored() -> None:
    text = fence("print('hi')\n") + "Run it with:\n" + fence("python main.py\n", "bash")
    assert extract_code(text).code == "print('hi')\n"
    only_bash = "Run:\n" + fence("ls -la\n", "bash")
    assert extract_code(only_bash).code is None


def test_unclosed_fence_runs_to_the_end() -> None:
    text = "Sure:\n```python\ndef f(x):\n    return x + 1\n"
    found = extract_code(text)
    assert found.method == "unclosed"
    assert found.code == "def f(x):\n    return x + 1\n"
    assert extract_code(text, CodeExtractConfig(allow_unclosed=False)).code is None


def test_unclosed_block_after_closed_one_is_the_last() -> None:
    text = fence("a = 1\n") + "Improved:\n```python\nb = 2\n"
    found = extract_code(text)
    assert (found.code, found.method, found.blocks) == ("b = 2\n", "unclosed", 2)


def test_no_fence_takes_the_text_when_it_parses() -> None:
    assert extract_code("def f():\n    return 3\n").method == "raw"
    assert extract_code("The answer is to loop over the list.").code is None
    assert extract_code("The answer is a loop.", CodeExtractConfig(fallback="always")).code is not None
    assert extract_code("x = 1\n", CodeExtractConfig(fallback="never")).code is None


def test_body_completion_parses_with_its_prefix() -> None:
    prefix = 'def f(x):\n    """Add one."""\n'
    body = "    return x + 1\n"
    assert extract_code(body).code is None  # an indented body alone is not Python
    found = extract_code(body, prefix=prefix)
    assert (found.code, found.method) == (body, "raw")


def test_raw_mode_takes_everything() -> None:
    text = "    return 1  # ```python is just text here"
    assert extract_code(text, CodeExtractConfig(raw=True)).code == text


def test_reasoning_is_dropped() -> None:
    text = "<think>\n" + fence("wrong = 1\n") + "</think>\nFinal:\n" + fence("right = 1\n")
    assert extract_code(text).code == "right = 1\n"
    unfinished = "<think>\nI will write\n" + fence("x = 1\n")
    assert extract_code(unfinished).code is None
    assert extract_code(unfinished, CodeExtractConfig(strip_think=False)).code == "x = 1\n"


def test_indented_fence_and_longer_fences() -> None:
    text = "1. Code:\n   ```python\n   def f():\n       return 1\n   ```\n"
    assert extract_code(text).code == "def f():\n    return 1\n"
    nested = "````python\nprint('```')\n```\nstill code\n````\n"
    assert extract_code(nested).code == "print('```')\n```\nstill code\n"


def test_empty_blocks_are_skipped() -> None:
    text = fence("print(1)\n") + "```python\n\n```\n"
    assert extract_code(text).code == "print(1)\n"


def test_find_blocks_reports_languages_and_closure() -> None:
    blocks = find_blocks("```py\na\n```\n~~~\nb\n~~~\n```js\nc")
    assert [(b.language, b.code, b.closed) for b in blocks] == [
        ("py", "a\n", True),
        ("", "b\n", True),
        ("js", "c\n", False),
    ]


def test_not_text_and_empty() -> None:
    assert extract_code(None).code is None  # type: ignore[arg-type]
    assert extract_code("").method == "none"


def test_linear_on_huge_input() -> None:
    text = "```python\n" + "x = 1\n" * 200_000 + "```\n" + "```\n" * 50_000
    start = time.perf_counter()
    found = extract_code(text)
    assert found.code is not None and found.code.count("\n") == 200_000
    assert time.perf_counter() - start < 2.0
