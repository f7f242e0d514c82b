"""Pure scoring, no torch: answer extraction, math equivalence under deadlines, format and length rewards."""

from rlvr.verifiers.extract import Extraction, ExtractionConfig, extract_answer, extract_choice, find_boxed
from rlvr.verifiers.math_verifier import MathVerifier, MathVerifyConfig, default_verifier, verify_math
from rlvr.verifiers.types import REASONS, Verdict

__all__ = [
    "REASONS",
    "Extraction",
    "ExtractionConfig",
    "MathVerifier",
    "MathVerifyConfig",
    "Verdict",
    "default_verifier",
    "extract_answer",
    "extract_choice",
    "find_boxed",
    "verify_math",
]
