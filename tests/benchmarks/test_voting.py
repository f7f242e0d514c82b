"""maj@k clusters: the verifier decides which answers are the same."""

from __future__ import annotations

from rlvr.benchmarks.voting import cluster_answers, exact_clusters, math_clusters
from rlvr.verifiers import default_verifier


def test_equivalent_spellings_are_one_cluster():
    answers = ["1/2", "0.5", "\\frac{1}{2}", "2", None, "\\dfrac12", "", "2.0"]
    clusters = math_clusters(answers, "0.5", default_verifier())
    assert clusters.ids == [0, 0, 0, 1, None, 0, None, 1]
    assert clusters.answers == ["1/2", "2"]  # a cluster's representative is its first answer
    assert clusters.correct == [True, False]


def test_symbolic_equivalence_through_math_verify():
    answers = ["x^2 + 2x + 1", "(x+1)^2", "\\sqrt{2}/2", "\\frac{1}{\\sqrt{2}}"]
    clusters = math_clusters(answers, "(x+1)^2", default_verifier())
    assert clusters.ids == [0, 0, 1, 1]
    assert clusters.correct == [True, False]


def test_exact_clusters_compare_text():
    clusters = exact_clusters(["cat", " cat", "dog", None], "dog")
    assert clusters.ids == [0, 0, 1, None]
    assert clusters.correct == [False, True]


def test_clustering_asks_only_about_new_answers():
    asked = []

    def equivalent(representatives, answer):
        asked.append((tuple(representatives), answer))
        return [False] * len(representatives)

    ids, representatives = cluster_answers(["a", "b", "a", "b", "c"], equivalent)
    assert ids == [0, 1, 0, 1, 2]
    assert representatives == ["a", "b", "c"]
    assert asked == [(("a",), "b"), (("a", "b"), "c")]  # repeats of a representative need no check


def test_an_equation_votes_for_its_final_value():
    # The verifier finds any two true equations equivalent; as votes they must stay apart.
    clusters = math_clusters(["12 + 2 = 14", "4 + 4 = 8", "8", "x >= 3", "2*4 = 8"], "8", default_verifier())
    assert clusters.ids == [0, 1, 1, 2, 1]
    assert clusters.answers == ["14", "8", "x >= 3"]
    assert clusters.correct == [False, True, False]
    equation_gold = math_clusters(["y = 2x + 3", "y = 3 + 2x", "y = x"], "y = 2x + 3", default_verifier())
    assert equation_gold.ids == [0, 0, 1] and equation_gold.correct == [True, False]
