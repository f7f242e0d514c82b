"""Finding the program in a completion: fenced blocks, unclosed fences, bare code.

Rules, in order (`CodeExtractConfig` switches each one):

1. Reasoning is dropped: only the text after the last `</think>` is searched; a `<think>` that is never closed
   means the model never answered (`strip_think`).
2. Fenced blocks: a line of three or more backticks (or tildes), any indentation, an optional info string whose
   first word is the language; the block ends at a line of at least as many of the same character. The
   indentation of the opening fence is removed from the block's lines. Blocks tagged with a Python language
   (`python`, `py`, `python3`, `py3`, ...) are preferred; untagged blocks are used only when no block is tagged
   Python (`untagged`); blocks in other languages (`bash`, `text`, `json`, ...) never are. Empty blocks are skipped.
3. An opening fence that is never closed (a completion cut at the length limit) is a block running to the end
   of the text (`allow_unclosed`).
4. Of the usable blocks, `block` picks `last` (default), `first`, `longest`, or `all` (joined by blank lines).
5. No usable block: the whole text is the program when `prefix + text` parses as Python (`fallback="if_parses"`,
   the default, so base-model completions and HumanEval-style function bodies work), always (`"always"`) or
   never (`"never"`).

Scanning is linear in the length of the text.
"""

from __future__ import annotations

import ast
import re
import warnings
from dataclasses import dataclass

PYTHON_TAGS = frozenset({"python", "py", "python3", "py3", "python2", "py2", "ipython"})
_FENCE = re.compile(r"^([ \t]*)(`{3,}|~{3,})[ \t]*([^`\n]*?)[ \t]*$")
_LANG = re.compile(r"[A-Za-z0-9_+#.-]+")
CANDIDATE_FILENAME = "<rlvr candidate>"
# Parsing candidates here must not print their invalid escape sequences as warnings of the caller's process.
for _category in (DeprecationWarning, SyntaxWarning):
    warnings.filterwarnings("ignore", category=_category, module=re.escape(CANDIDATE_FILENAME))


@dataclass(frozen=True)
class CodeExtractConfig:
    block: str = "last"
    """Which usable fenced block is the program: "last", "first", "longest" or "all" (joined)."""
    untagged: bool = True
    """Untagged blocks count when no block is tagged as Python."""
    allow_unclosed: bool = True
    """An opening fence never closed runs to the end of the text."""
    fallback: str = "if_parses"
    """Without a usable block, the whole text is the program: "if_parses", "always" or "never"."""
    strip_think: bool = True
    """Search only after the last `</think>`; an unclosed `<think>` leaves nothing to search."""
    raw: bool = False
    """The completion is the program as it is (no fences looked for): base models, HumanEval bodies."""

    def __post_init__(self) -> None:
        if self.block not in ("last", "first", "longest", "all"):
            raise ValueError(f"CodeExtractConfig.block must be last/first/longest/all, got {self.block!r}")
        if self.fallback not in ("if_parses", "always", "never"):
            raise ValueError(
                f"CodeExtractConfig.fallback must be if_parses/always/never, got {self.fallback!r}"
            )


@dataclass(frozen=True)
class CodeBlock:
    code: str
    language: str
    """The fence's language tag, lower case ("" when untagged)."""
    closed: bool


@dataclass(frozen=True)
class CodeExtraction:
    """The program found in a completion (`code` is None when there is none) and how it was found."""

    code: str | None
    method: str
    """"fenced", "unclosed" (an opening fence never closed), "raw" (the whole text), or "none"."""
    blocks: int = 0
    """How many usable fenced blocks the text had."""
    language: str = ""


def find_blocks(text: str) -> list[CodeBlock]:
    """Every fenced block in `text`, in order; an unclosed last fence gives a block with `closed=False`."""
    blocks: list[CodeBlock] = []
    lines = text.split("\n")
    opened: tuple[int, str, str, str] | None = None  # (start line, fence, language, indentation)
    for number, line in enumerate(lines):
        match = _FENCE.match(line)
        if match is None:
            continue
        indent, fence, info = match.groups()
        if opened is None:
            language = _LANG.match(info)
            opened = (number + 1, fence, language.group(0).lower() if language else "", indent)
        elif fence[0] == opened[1][0] and len(fence) >= len(opened[1]) and not info:
            blocks.append(CodeBlock(_body(lines[opened[0] : number], opened[3]), opened[2], True))
            opened = None
    if opened is not None:
        blocks.append(CodeBlock(_body(lines[opened[0] :], opened[3]), opened[2], False))
    return blocks


def _body(lines: list[str], indent: str) -> str:
    if indent:
        lines = [line[len(indent) :] if line.startswith(indent) else line.lstrip(" \t") for line in lines]
    return "\n".join(lines).rstrip() + "\n"


def parses(source: str) -> bool:
    """Whether `source` is valid Python syntax here (any failure of the parser counts as no)."""
    try:
        ast.parse(source, CANDIDATE_FILENAME)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return False
    return True


def extract_code(text: str, config: CodeExtractConfig | None = None, prefix: str = "") -> CodeExtraction:
    """The program in `text` under `config`; `prefix` is the code the completion continues (for the parse test)."""
    config = config or CodeExtractConfig()
    if not isinstance(text, str):
        return CodeExtraction(None, "none")
    if config.strip_think:
        end = text.rfind("</think>")
        if end >= 0:
            text = text[end + len("</think>") :]
        elif "<think>" in text:
            return CodeExtraction(None, "none")
    if config.raw:
        return CodeExtraction(text, "raw") if text.strip() else CodeExtraction(None, "none")
    blocks = [b for b in find_blocks(text) if b.code.strip() and (b.closed or config.allow_unclosed)]
    tagged = [b for b in blocks if b.language in PYTHON_TAGS]
    usable = tagged or ([b for b in blocks if not b.language] if config.untagged else [])
    if usable:
        if config.block == "all":
            chosen = usable[-1]
            code = "\n\n".join(b.code.rstrip("\n") for b in usable) + "\n"
        else:
            chosen = {
                "last": usable[-1],
                "first": usable[0],
                "longest": max(usable, key=lambda b: len(b.code)),
            }[config.block]
            code = chosen.code
        return CodeExtraction(code, "fenced" if chosen.closed else "unclosed", len(usable), chosen.language)
    if not text.strip() or config.fallback == "never":
        return CodeExtraction(None, "none")
    if config.fallback == "always" or parses(prefix + text):
        return CodeExtraction(text, "raw")
    return CodeExtraction(None, "none")
