"""The chunker: FAQ pairs whole, Markdown sections, packed paragraphs cut between sentences, pages kept."""

import itertools

from agents.knowledge import chunking
from agents.knowledge.chunking import Draft, chunk


def test_faq_pairs_stay_whole_on_one_line_or_over_several():
    content = (
        "Q: Where are you? A: 12 Harbour Street.\n"
        "Q: When are you open?\n"
        "A: Monday to Friday,\n"
        "9 to 5.\n"
        "\n"
        "Question: Is there parking?\n"
        "\n"
        "Answer: Free, behind the building.\n"
        "Q: Do you take cash?\n"
        "Yes, and cards.\n"
    )

    assert chunk(content) == [
        Draft(0, "Q: Where are you? A: 12 Harbour Street.", question="Where are you?", answer="12 Harbour Street."),
        Draft(
            1,
            "Q: When are you open? A: Monday to Friday, 9 to 5.",
            question="When are you open?",
            answer="Monday to Friday, 9 to 5.",
        ),
        Draft(2, "Q: Is there parking? A: Free, behind the building.", question="Is there parking?",
              answer="Free, behind the building."),
        Draft(3, "Q: Do you take cash? A: Yes, and cards.", question="Do you take cash?", answer="Yes, and cards."),
    ]  # fmt: skip


def test_a_question_without_an_answer_is_plain_text():
    assert chunk("Q: Anything else\n\nWe are a family practice.") == [
        Draft(0, "Anything else\n\nWe are a family practice.")
    ]


def test_markdown_headings_become_the_section_of_the_chunks_under_them():
    content = (
        "# Acme Dental\n\nA family practice.\n\n"
        "## Prices\n\nCleaning: 95 dollars.\n\n"
        "### Whitening\n\nIn the chair: 350 dollars.\n\n"
        "## Hours\nQ: Saturday? A: 9 to 1.\n\n"
        "Parking\n-------\n\nFree, behind the building.\n"
    )

    assert [(d.section, d.text) for d in chunk(content)] == [
        ("Acme Dental", "A family practice."),
        ("Acme Dental › Prices", "Cleaning: 95 dollars."),
        ("Acme Dental › Prices › Whitening", "In the chair: 350 dollars."),
        ("Acme Dental › Hours", "Q: Saturday? A: 9 to 1."),
        ("Acme Dental › Parking", "Free, behind the building."),
    ]


def test_paragraphs_are_packed_up_to_the_limit_and_a_long_one_is_cut_between_sentences_with_overlap():
    sentence = "The clinic offers a thorough examination with digital X-rays for every new patient. "
    long_paragraph = (sentence * 20).strip()  # about 1,700 characters
    content = f"Short intro.\n\nSecond short paragraph.\n\n{long_paragraph}"

    chunks = chunk(content)

    assert [len(c.text) <= chunking.MAX_CHARS for c in chunks] == [True] * len(chunks)
    assert chunks[0].text.startswith("Short intro.\n\nSecond short paragraph.\n\nThe clinic offers")
    for before, after in itertools.pairwise(chunks):
        last_sentence = before.text.rsplit(". ", 1)[-1]
        assert after.text.startswith(last_sentence)  # the overlap: the sentence before the cut, repeated
    assert [c.position for c in chunks] == list(range(len(chunks)))
    assert " ".join(c.text for c in chunks).count("thorough examination") >= 20


def test_a_paragraph_ends_a_chunk_once_it_is_long_enough():
    first = "A" * 300 + ". " + "B" * 250 + "."
    content = f"{first}\n\nThe next paragraph starts a new chunk."

    assert [c.text for c in chunk(content)] == [first, "The next paragraph starts a new chunk."]


def test_a_sentence_longer_than_a_chunk_is_cut_between_words_and_a_word_by_characters():
    words = " ".join(["word"] * 400)
    chunks = chunk(words + "\n\n" + "x" * 1700)

    assert [len(c.text) for c in chunks] == [799, 799, 399, 800, 800, 100]
    assert {c.text for c in chunks[:3]} <= {" ".join(["word"] * n) for n in (160, 80)}


def test_pages_split_by_form_feeds_are_kept_and_no_chunk_spans_two():
    content = "# Guide\n\nFirst page text.\fSecond page text.\n\nQ: Where? A: Here.\f\fFourth page."

    assert [(d.page, d.section, d.text) for d in chunk(content)] == [
        (1, "Guide", "First page text."),
        (2, "Guide", "Second page text."),
        (2, "Guide", "Q: Where? A: Here."),
        (4, "Guide", "Fourth page."),
    ]


def test_abbreviations_do_not_end_a_sentence():
    assert chunking.sentences('Dr. Smith sees children, e.g. toddlers. He said "hi." Then left.') == [
        "Dr. Smith sees children, e.g. toddlers.",
        'He said "hi."',
        "Then left.",
    ]


def test_headings_alone_are_still_the_documents_text_and_blank_text_gives_nothing():
    assert chunk("# Opening hours\n## Saturday") == [Draft(0, "# Opening hours ## Saturday")]
    assert chunk(" \n\n ") == []
    assert chunk("") == []


def test_csv_rows_are_lines_packed_into_chunks():
    rows = "\n".join(f"Cleaning {n},{n * 10} dollars" for n in range(100))

    chunks = chunk(rows)

    assert chunks[0].text.split("\n")[:2] == ["Cleaning 0,0 dollars", "Cleaning 1,10 dollars"]
    assert all(len(c.text) <= chunking.MAX_CHARS for c in chunks)
    assert sum(c.text.count("dollars") for c in chunks) >= 100
