"""Pure scoring, no torch: answer extraction, math equivalence under deadlines, code tests in a sandbox, format
and length rewards."""

from rlvr.verifiers.code import (
    CODE_REASONS,
    STDLIB_RESULT_TYPES,
    CodeConfig,
    CodeTestResult,
    CodeVerdict,
    CodeVerifier,
)
from rlvr.verifiers.code_extract import CodeExtractConfig, CodeExtraction, extract_code
from rlvr.verifiers.code_tests import LCB_PRELUDE, CodeTestCase, CodeTests
from rlvr.verifiers.extract import Extraction, ExtractionConfig, extract_answer, extract_choice, find_boxed
from rlvr.verifiers.math_verifier import MathVerifier, MathVerifyConfig, default_verifier, verify_math
from rlvr.verifiers.types import REASONS, Verdict

__all__ = [
    "CODE_REASONS",
    "LCB_PRELUDE",
    "REASONS",
    "STDLIB_RESULT_TYPES",
    "CodeConfig",
    "CodeExtractConfig",
    "CodeExtraction",
    "CodeTestCase",
    "CodeTestResult",
    "CodeTests",
    "CodeVerdict",
    "CodeVerifier",
    "Extraction",
    "ExtractionConfig",
    "MathVerifier",
    "MathVerifyConfig",
    "Verdict",
    "default_verifier",
    "extract_answer",
    "extract_choice",
    "extract_code",
    "find_boxed",
    "verify_math",
]
