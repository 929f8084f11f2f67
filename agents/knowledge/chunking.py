"""Cutting a document's text into the passages that are embedded and searched (docs/knowledge.md#chunks).

One chunker for every format (an upload's or a page's text is plain text or Markdown by then):

- an FAQ pair ("Q: … A: …" on one line, or a Q line then an answer of one or more lines) is one chunk,
  whole, and keeps its question and answer apart;
- a Markdown heading (`# …`, or a line underlined with === / ---) starts a section: the chunks under it
  carry the heading path ("Prices › Cleaning"), and no chunk spans two sections;
- other text is packed paragraph by paragraph into chunks of MIN_CHARS to MAX_CHARS characters, cut
  between sentences; a paragraph cut in the middle repeats its last sentence at the start of the next
  chunk (a small overlap, so a fact split across the cut is found whole in one of them);
- pages (form feeds, as the PDF extractor writes them) are kept as each chunk's page, and no chunk
  spans two pages.
"""

import re
from dataclasses import dataclass

MIN_CHARS = 500  # a chunk closes at a paragraph's end once it is this long
MAX_CHARS = 800  # and never grows past this (a longer sentence is cut between words)
OVERLAP_CHARS = 200  # the sentence repeated after a cut inside a paragraph is at most this long
FAQ_MAX_CHARS = 2000  # an FAQ pair stays whole up to the embedder's input limit (core.embeddings.MAX_CHARS)
SECTION_CHARS = 255
PAGE_BREAK = "\f"

HEADING_RE = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
SETEXT_RE = re.compile(r"^\s{0,3}(=+|-{2,})\s*$")
MARKER = r"^\s*(?:[-*]\s+)?\**"
QUESTION_RE = re.compile(MARKER + r"(?:Q|Question)\s*[:.)]\**\s*(.*)$", re.IGNORECASE)
ANSWER_RE = re.compile(MARKER + r"(?:A|Answer)\s*[:.)]\**\s*(.*)$", re.IGNORECASE)
INLINE_QA_RE = re.compile(MARKER + r"(?:Q|Question)\s*:\**\s*(.+?)\s+\**(?:A|Answer)\s*:\**\s*(.+)$", re.IGNORECASE)
SENTENCE_END_RE = re.compile(r"(?<=[.!?…])\s+|(?<=[.!?…][\"')\]])\s+")
ABBREVIATIONS = frozenset({"dr.", "mr.", "mrs.", "ms.", "st.", "no.", "e.g.", "i.e.", "etc.", "vs.", "approx."})


@dataclass(frozen=True)
class Draft:
    """A chunk before it is stored: its text and where it came from."""

    position: int
    text: str
    section: str = ""
    page: int | None = None
    question: str = ""
    answer: str = ""

    @property
    def is_faq(self) -> bool:
        return bool(self.question)


@dataclass
class _Unit:
    text: str
    sep: str  # what joins it to the unit before: "" (first), " " (same line), "\n" (next line), "\n\n" (paragraph)


class _Reader:
    """One pass over the lines: headings, FAQ pairs and paragraphs, in document order."""

    def __init__(self) -> None:
        self.headings: list[tuple[int, str]] = []
        self.page: int | None = None
        self.blocks: list[tuple[str, int | None, object]] = []  # (section, page, paragraphs | (q, a))
        self.paragraphs: list[list[str]] = []
        self.question: str | None = None
        self.answer: list[str] = []
        self.gap = False  # a blank line since the question

    @property
    def section(self) -> str:
        return " › ".join(text for _, text in self.headings)[:SECTION_CHARS]

    def read(self, content: str) -> list[tuple[str, int | None, object]]:
        pages = content.split(PAGE_BREAK)
        for number, page in enumerate(pages, start=1):
            self.page = number if len(pages) > 1 else None
            for line in page.splitlines():
                self.line(line.rstrip())
            self.flush()
        return self.blocks

    def line(self, line: str) -> None:
        if m := HEADING_RE.match(line):
            self.flush()
            self.heading(len(m[1]), m[2])
        elif SETEXT_RE.match(line) and self._single_line_paragraph():
            title = self.paragraphs.pop()[0]
            self.flush()
            self.heading(1 if "=" in line else 2, title.strip())
        elif m := INLINE_QA_RE.match(line):
            self.flush()
            self.blocks.append((self.section, self.page, (m[1].strip(), m[2].strip())))
        elif m := QUESTION_RE.match(line):
            self.flush()
            self.question, self.gap = m[1].strip(), False
        elif self.question is not None and not self.answer and (m := ANSWER_RE.match(line)):
            self.answer.append(m[1].strip())
        elif self.question is not None and self.answer and line.strip():
            self.answer.append(line.strip())
        elif self.question is not None and not self.answer and line.strip() and not self.gap:
            if self.question.endswith("?"):  # an answer written without its "A:"
                self.answer.append(line.strip())
            else:  # a question written over two lines
                self.question = f"{self.question} {line.strip()}"
        elif not line.strip() or SETEXT_RE.match(line):
            if self.question is not None and not self.answer:
                self.gap = True  # "Q: …", a blank line, then "A: …": one Word paragraph each
                return
            self.close_pair()
            if self.paragraphs and self.paragraphs[-1]:
                self.paragraphs.append([])
        else:
            self.close_pair()
            if not self.paragraphs:
                self.paragraphs.append([])
            self.paragraphs[-1].append(line)

    def _single_line_paragraph(self) -> bool:
        return self.question is None and bool(self.paragraphs) and len(self.paragraphs[-1]) == 1

    def heading(self, level: int, text: str) -> None:
        text = " ".join(text.strip("#*_ ").split())
        self.headings = [(lvl, t) for lvl, t in self.headings if lvl < level]
        if text:
            self.headings.append((level, text))

    def close_pair(self) -> None:
        if self.question is not None:
            if self.answer:
                self.blocks.append((self.section, self.page, (self.question, " ".join(self.answer))))
            elif self.question:
                self.paragraphs.append([self.question])  # a "Q:" line with no answer is plain text
                self.paragraphs.append([])
        self.question, self.answer, self.gap = None, [], False

    def flush(self) -> None:
        self.close_pair()
        paragraphs = [p for p in self.paragraphs if p]
        if paragraphs:
            self.blocks.append((self.section, self.page, paragraphs))
        self.paragraphs = []


def chunk(content: str) -> list[Draft]:
    """The chunks of a document's text, in document order (positions 0, 1, …)."""
    drafts: list[Draft] = []
    for section, page, block in _Reader().read(content or ""):
        if isinstance(block, tuple):
            question, answer = block
            text = f"Q: {question} A: {answer}"[:FAQ_MAX_CHARS]
            drafts.append(Draft(len(drafts), text, section, page, question=question, answer=answer))
        else:
            for text in pack(block):
                drafts.append(Draft(len(drafts), text, section, page))
    if not drafts and (content or "").strip():  # headings and nothing else: the words are still the document's
        text = " ".join(content.split())[:MAX_CHARS]
        drafts.append(Draft(0, text))
    return drafts


def pack(paragraphs: list[list[str]]) -> list[str]:
    """Paragraphs (lists of lines) as chunk texts of at most MAX_CHARS, cut between sentences."""
    chunks: list[str] = []
    current: list[_Unit] = []
    length = 0
    for unit in _units(paragraphs):
        size = len(unit.sep) + len(unit.text)
        if current and length + size > MAX_CHARS:
            chunks.append(_join(current))
            carried = current[-1] if unit.sep != "\n\n" and len(current) > 1 else None
            current, length = [], 0
            if carried is not None and len(carried.text) <= OVERLAP_CHARS and len(carried.text) + size <= MAX_CHARS:
                current, length = [_Unit(carried.text, "")], len(carried.text)
        elif current and unit.sep == "\n\n" and length >= MIN_CHARS:
            chunks.append(_join(current))
            current, length = [], 0
        if not current:
            unit = _Unit(unit.text, "")
            size = len(unit.text)
        current.append(unit)
        length += size
    if current:
        chunks.append(_join(current))
    return chunks


def _join(units: list[_Unit]) -> str:
    return "".join(unit.sep + unit.text for unit in units).strip()


def _units(paragraphs: list[list[str]]) -> list[_Unit]:
    """Sentences (and lines) with what joins each to the one before, none longer than MAX_CHARS."""
    units: list[_Unit] = []
    for number, lines in enumerate(paragraphs):
        for line_number, line in enumerate(lines):
            for index, sentence in enumerate(sentences(line)):
                if index:
                    sep = " "
                elif line_number:
                    sep = "\n"
                else:
                    sep = "\n\n" if number else ""
                for piece_index, piece in enumerate(_cut_words(sentence)):
                    units.append(_Unit(piece, sep if piece_index == 0 else " "))
    return units


def sentences(text: str) -> list[str]:
    """The sentences of one line of text (whitespace collapsed); an abbreviation does not end one."""
    parts = [p for p in SENTENCE_END_RE.split(" ".join(text.split())) if p]
    merged: list[str] = []
    for part in parts:
        if merged and merged[-1].split(" ")[-1].lower() in ABBREVIATIONS:
            merged[-1] = f"{merged[-1]} {part}"
        else:
            merged.append(part)
    return merged


def _cut_words(sentence: str) -> list[str]:
    """A sentence longer than MAX_CHARS in pieces cut between words (a word longer than that, by characters)."""
    if len(sentence) <= MAX_CHARS:
        return [sentence]
    pieces: list[str] = []
    current = ""
    for word in sentence.split(" "):
        while len(word) > MAX_CHARS:
            if current:
                pieces.append(current)
                current = ""
            pieces.append(word[:MAX_CHARS])
            word = word[MAX_CHARS:]
        if current and len(current) + 1 + len(word) > MAX_CHARS:
            pieces.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current:
        pieces.append(current)
    return pieces
