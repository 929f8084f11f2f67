"""Hybrid search over plain data: meaning leads, words break ties and cover passages not yet embedded."""

import numpy as np
import pytest

from agents.knowledge.search import DIM, EMPTY, FaqEntry, HybridIndex, KnowledgeSnapshot, Passage, Source, terms


def unit(*weights: tuple[int, float]) -> np.ndarray:
    """A unit vector with these (dimension, weight) components."""
    vector = np.zeros(DIM, dtype=np.float32)
    for dimension, weight in weights:
        vector[dimension] = weight
    return vector / np.linalg.norm(vector)


def passage(n: int, text: str, title: str = "FAQ", section: str = "", question: str = "") -> Passage:
    return Passage(f"c{n}", Source("d1", title, section), n, text, question)


PASSAGES = [
    passage(0, "Q: Where are you? A: 12 Harbour Street.", question="Where are you?"),
    passage(1, "Q: When are you open? A: Monday to Friday, 9 to 5.", question="When are you open?"),
    passage(2, "Parking is free behind the building.", title="Directions", section="Parking"),
]
# Meaning as the model would see it: the address and the directions are close, the hours far from both.
MATRIX = np.vstack([unit((0, 1.0)), unit((1, 1.0)), unit((0, 0.8), (2, 0.6))])
LOCATION = unit((0, 0.95), (2, 0.31))  # "where are you located": the address first, the parking second


def texts(hits) -> list[str]:
    return [hit.text for hit in hits]


def test_meaning_finds_the_answer_when_no_word_matches():
    hits = HybridIndex(PASSAGES, MATRIX).search("located", LOCATION, k=3)

    assert texts(hits) == [PASSAGES[0].text, PASSAGES[2].text]
    assert [round(hit.similarity, 3) for hit in hits] == [0.951, 0.947]
    assert [hit.bm25 for hit in hits] == [0.0, 0.0]


def test_without_a_query_vector_words_alone_rank():
    hits = HybridIndex(PASSAGES, MATRIX).search("is parking free", k=3)

    assert texts(hits) == [PASSAGES[2].text]
    assert hits[0].similarity is None
    assert hits[0].bm25 > 0


def test_a_passage_not_yet_embedded_is_found_by_its_words_alone():
    pending = MATRIX.copy()
    pending[2] = 0

    hits = HybridIndex(PASSAGES, pending).search("parking behind the building", LOCATION, k=3)

    assert texts(hits) == [PASSAGES[0].text, PASSAGES[2].text]
    assert (hits[1].similarity, hits[1].bm25 > 0) == (None, True)


def test_matching_words_break_a_tie_of_meaning():
    twins = [passage(0, "Dr. Alvarez places implants."), passage(1, "Dr. Okafor sees children.")]
    matrix = np.vstack([unit((0, 1.0)), unit((0, 1.0))])

    hits = HybridIndex(twins, matrix).search("is okafor in", unit((0, 1.0)), k=2)

    assert texts(hits) == ["Dr. Okafor sees children.", "Dr. Alvarez places implants."]


def test_an_unrelated_question_finds_nothing():
    weather = unit((5, 1.0))

    assert HybridIndex(PASSAGES, MATRIX).search("what is the weather tomorrow", weather, k=3) == []


def test_k_limits_the_hits_and_an_empty_index_finds_nothing():
    index = HybridIndex(PASSAGES, MATRIX, min_similarity=0.0)

    assert len(index.search("where", LOCATION, k=1)) == 1
    assert index.search("where", LOCATION, k=0) == []
    assert HybridIndex([]).search("anything", LOCATION) == []
    assert EMPTY.search("anything", LOCATION) == []


def test_reciprocal_rank_fusion_is_there_to_measure_against():
    hits = HybridIndex(PASSAGES, MATRIX, fusion="rrf").search("where are you located", LOCATION, k=3)

    assert texts(hits)[0] == PASSAGES[0].text
    assert hits[0].score == pytest.approx(2 / 61)


def test_a_matrix_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match=r"expected \(3, 384\)"):
        HybridIndex(PASSAGES, np.zeros((2, DIM)))


def test_a_hit_names_its_source():
    hit = HybridIndex(PASSAGES, MATRIX).search("parking", k=1)[0]

    assert hit.source == Source("d1", "Directions", "Parking")
    assert hit.source.label == "Directions › Parking"
    assert Source("d", "Guide", "", 3).label == "Guide, page 3"
    assert Source("d", "Guide", "Prices", 3).label == "Guide › Prices, page 3"


def test_bm25_words_drop_stopwords_fold_accents_and_plurals():
    assert terms("Where are your opening hours? Café prices, the batteries!") == [
        "where", "opening", "hour", "cafe", "price", "battery",
    ]  # fmt: skip


def test_a_snapshot_stacks_its_faq_question_vectors_with_zeros_for_those_not_embedded():
    source = Source("d1", "FAQ")
    faq = (FaqEntry("Where are you?", "12 Harbour Street.", source, unit((0, 1.0))), FaqEntry("Open?", "9-5", source))
    snapshot = KnowledgeSnapshot("r1", tuple(PASSAGES), MATRIX, faq)

    assert snapshot.faq_matrix.shape == (2, DIM)
    assert (snapshot.faq_matrix[0] == unit((0, 1.0))).all() and not snapshot.faq_matrix[1].any()
    assert snapshot.embedded == 3
    assert snapshot.index is snapshot.index
    assert texts(snapshot.search("where are you located", LOCATION, k=1)) == [PASSAGES[0].text]
