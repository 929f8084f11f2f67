"""The documentation's structure, checked without building the site (`make docs` builds it strictly in CI)."""

import re
import unicodedata
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
ROOT_DOCUMENTS = ["README.md", "AGENTS.md"]  # read on GitHub, outside the site: their links are checked here

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def nav_pages(nav) -> list[str]:
    """Every page file named in mkdocs.yml's nav, sections included."""
    pages = []
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        if isinstance(value, list):
            pages += nav_pages(value)
        elif not re.match(r"^[a-z]+://", value):
            pages.append(value)
    return pages


def slug(heading: str) -> str:
    """The anchor of a heading, as MkDocs (Python-Markdown's toc) and GitHub make it for plain headings."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = re.sub(r"[`*]", "", text)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors(path: Path) -> set[str]:
    return {slug(h) for h in HEADING.findall(FENCE.sub("", path.read_text(encoding="utf-8")))}


def local_links(path: Path) -> list[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    return [target for target in LINK.findall(text) if not re.match(r"^(https?|mailto):", target)]


def mkdocs_config() -> dict:
    return yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))


def test_every_page_under_docs_is_in_the_navigation_and_every_navigation_entry_is_a_page():
    config = mkdocs_config()
    in_nav = nav_pages(config["nav"])
    on_disk = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))

    assert sorted(set(in_nav)) == on_disk
    assert len(in_nav) == len(set(in_nav)), "a page is listed twice in the nav"
    assert config["docs_dir"] == "docs"


def test_the_site_build_is_strict_checks_links_and_anchors_and_loads_nothing_from_the_network():
    config = mkdocs_config()

    assert config["strict"] is True
    assert config["validation"] == {
        "omitted_files": "warn",
        "absolute_links": "warn",
        "unrecognized_links": "warn",
        "anchors": "warn",
    }
    # The built-in theme takes highlight.js from a CDN unless told not to.
    assert config["theme"]["highlightjs"] is False


@pytest.mark.parametrize("document", ROOT_DOCUMENTS)
def test_the_links_of_a_root_document_lead_to_files_and_headings_that_exist(document):
    broken = []
    for target in local_links(ROOT / document):
        path_part, _, anchor = target.partition("#")
        path = (ROOT / path_part).resolve() if path_part else ROOT / document
        if not path.exists():
            broken.append(f"{target}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{target}: no heading with that anchor")

    assert broken == []


def test_the_readme_maps_every_page_of_the_docs():
    linked = {target.partition("#")[0] for target in local_links(ROOT / "README.md")}

    assert {f"docs/{page}" for page in nav_pages(mkdocs_config()["nav"])} <= linked


def test_slug_makes_the_anchors_the_docs_rely_on():
    assert slug("simulate_call: talk to an agent without a phone") == "simulate_call-talk-to-an-agent-without-a-phone"
    assert slug("REST API (v1)") == "rest-api-v1"
    assert slug("Retries, disabling, replay") == "retries-disabling-replay"
    assert slug("`make test`") == "make-test"


def test_every_docs_link_in_a_code_comment_names_a_page_and_heading_that_exist():
    """Comments cite a rule's page as `docs/<page>.md#<anchor>`; a renamed heading must not leave them dangling."""
    cited = re.compile(r"\bdocs/([\w-]+\.md)(?:#([\w-]+))?")
    skip = {".git", ".venv", ".venv-tts", "site", "node_modules", "__pycache__"}
    broken = []
    for path in ROOT.rglob("*.py"):
        if skip & set(path.relative_to(ROOT).parts):
            continue
        for page, anchor in cited.findall(path.read_text(encoding="utf-8")):
            target = DOCS / page
            if not target.exists() or (anchor and anchor not in anchors(target)):
                broken.append(f"{path.relative_to(ROOT)}: docs/{page}{'#' + anchor if anchor else ''}")

    assert broken == []
