"""Word handling shared by the offline responder's retrieval and intent matching.

A tiny stemmer and synonym table instead of an NLP package: the responder must be deterministic,
load nothing, and only needs to line up a caller's words with FAQ and tool wording.
"""

import re

WORD_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")

STOPWORDS = frozenset(
    [
        "a",
        "about",
        "am",
        "an",
        "and",
        "any",
        "anything",
        "are",
        "as",
        "at",
        "be",
        "been",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "for",
        "from",
        "get",
        "had",
        "has",
        "have",
        "hello",
        "hey",
        "hi",
        "how",
        "i",
        "i'd",
        "i'm",
        "is",
        "it",
        "it's",
        "just",
        "know",
        "let",
        "like",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "please",
        "so",
        "some",
        "tell",
        "that",
        "the",
        "their",
        "there",
        "this",
        "to",
        "us",
        "want",
        "was",
        "we",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "would",
        "you",
        "you're",
        "your",
        "yours",
        "thanks",
        "thank",
    ]
)

# Caller wording mapped onto the words businesses use in tool descriptions and FAQs.
SYNONYMS = {
    "free": "available",
    "availability": "available",
    "slot": "available",
    "slots": "available",
    "openings": "available",
    "vacancy": "available",
    "vacancies": "available",
    "schedule": "book",
    "reserve": "book",
    "reservation": "book",
    "booking": "book",
    "appt": "appointment",
    "cost": "price",
    "costs": "price",
    "fee": "price",
    "fees": "price",
    "charge": "price",
    "pricing": "price",
    "located": "location",
    "address": "location",
    "move": "reschedule",
}


def words(text: str) -> list[str]:
    """Lower-cased words with apostrophes kept ("what's" stays one word)."""
    return WORD_RE.findall(text.lower().replace("’", "'"))


def stem(word: str) -> str:
    """Strip common English suffixes so 'opening'/'open' and 'hours'/'hour' meet."""
    word = SYNONYMS.get(word, word)
    if word.endswith("'s"):
        word = word[:-2]
    for suffix, repl in (("ies", "y"), ("sses", "ss"), ("ing", ""), ("ed", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)] + repl
            break
    else:
        if word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) > 3:
            word = word[:-1]
    # 'close'/'closed' and 'service'/'services' end differently after the cuts above.
    return word[:-1] if word.endswith("e") and len(word) > 3 else word


def terms(text: str) -> list[str]:
    """Content words of `text`, stemmed, in order (duplicates kept for term frequency)."""
    return [stem(w) for w in words(text) if w not in STOPWORDS]


def human_list(items: list[str], conjunction: str = "and") -> str:
    """'a', 'a and b', 'a, b and c'."""
    items = [i for i in items if i]
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {conjunction} {items[-1]}"


def humanize_name(name: str) -> str:
    """'check_availability' -> 'check availability'."""
    return re.sub(r"[_\-]+", " ", name).strip()
