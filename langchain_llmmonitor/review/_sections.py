"""A report as sections of plain blocks, and the two renderers that walk them: a self-contained HTML page and Markdown.

The review says what it has to say once, as `Report` (see `_report.build_report`); each format only decides how a
block looks. All text is untrusted (questions, answers, judge reasons and user comments are in it): the HTML renderer
escapes every string, the Markdown one keeps every string on one line and escapes what would otherwise become a tag, a
link or a table cell break. Links are links only for http(s) URLs. Figures are PNGs drawn on demand: the HTML page
inlines them, the Markdown leaves them out (and says so), so rendering Markdown needs no plotting library.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias
from urllib.parse import quote

# Model --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Span:
    """Text with a look: `style` is an HTML class (e.g. a verdict's colour), `strong` is bold in both formats."""

    text: str
    style: str = ""
    strong: bool = False


@dataclass(frozen=True, slots=True)
class Link:
    """A link, shown as plain text when the URL is not http(s)."""

    text: str
    url: str


Inline: TypeAlias = str | Span | Link
Line: TypeAlias = tuple[Inline, ...]


@dataclass(frozen=True, slots=True)
class Heading:
    """A sub-heading inside a section."""

    text: str


@dataclass(frozen=True, slots=True)
class Paragraph:
    parts: Line


@dataclass(frozen=True, slots=True)
class Note:
    """A paragraph that explains how to read what is above it: set smaller in HTML."""

    parts: Line


@dataclass(frozen=True, slots=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[Inline, ...], ...]


@dataclass(frozen=True, slots=True)
class Bullets:
    items: tuple[Line, ...]


@dataclass(frozen=True, slots=True)
class Figure:
    """A plot: `png` draws it when the HTML page is rendered; `anchor` is its id in the page."""

    anchor: str
    alt: str
    png: Callable[[], bytes]
    caption: str = ""


@dataclass(frozen=True, slots=True)
class Details:
    """Supporting numbers: folded under `summary` in HTML, shown as they are in Markdown."""

    summary: str
    blocks: tuple[Block, ...]


Block: TypeAlias = Heading | Paragraph | Note | Table | Bullets | Figure | Details


@dataclass(frozen=True, slots=True)
class Section:
    """`key` is the section's id in the HTML page; `title` its heading in both formats."""

    key: str
    title: str
    blocks: tuple[Block, ...]


@dataclass(frozen=True, slots=True)
class Report:
    """`page_title` is the HTML <title>; `subtitle` says what the report covers, under the main heading."""

    title: str
    page_title: str
    subtitle: str
    sections: tuple[Section, ...]


def _is_web_url(url: str) -> bool:
    return url.startswith(("https://", "http://"))


# HTML ---------------------------------------------------------------------------------------------------------------

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1100px;
       color: #222; line-height: 1.45; padding: 0 1rem; }
h1 { margin-bottom: 0.2rem; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; margin-top: 2rem; }
h3 { margin: 1.4rem 0 0.3rem; }
.meta { color: #666; margin-top: 0; }
.status { display: inline-block; padding: 0.2rem 0.7rem; border-radius: 4px; font-weight: 600; }
.status-degraded { background: #fde2e4; color: #8a0015; } .status-ok { background: #def5e3; color: #185a2b; }
.status-not_enough_samples { background: #eee; color: #444; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; margin: 0.6rem 0; }
th, td { border: 1px solid #ddd; padding: 0.3rem 0.45rem; text-align: left; vertical-align: top; }
th { background: #f5f5f5; }
.verdict-degraded { color: #8a0015; font-weight: 600; } .verdict-improved { color: #185a2b; }
.verdict-not_enough_samples { color: #666; font-style: italic; }
figure { margin: 1rem 0 0.4rem; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption, .note { color: #555; font-size: 0.88rem; }
details { margin-bottom: 1rem; } summary { cursor: pointer; color: #1f5fa8; }
#summary li { margin-bottom: 0.35rem; }
"""


def to_html(report: Report) -> str:
    """One self-contained page: inline style and images, no scripts, nothing loaded from elsewhere."""
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(report.page_title)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{_e(report.title)}</h1>",
        f'<p class="meta">{_e(report.subtitle)}</p>',
    ]
    parts += [section_html(section) for section in report.sections]
    parts.append("</body></html>")
    return "\n".join(parts)


def section_html(section: Section) -> str:
    """One section as an HTML fragment (the page's, or a notebook's pick of them)."""
    body = "".join(_html_block(block) for block in section.blocks)
    return f'<section id="{_e(section.key)}"><h2>{_e(section.title)}</h2>{body}</section>'


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _html_block(block: Block) -> str:
    match block:
        case Heading():
            return f"<h3>{_e(block.text)}</h3>"
        case Paragraph():
            return f"<p>{_html_line(block.parts)}</p>"
        case Note():
            return f'<p class="note">{_html_line(block.parts)}</p>'
        case Table():
            return _html_table(block)
        case Bullets():
            return "<ul>" + "".join(f"<li>{_html_line(item)}</li>" for item in block.items) + "</ul>"
        case Figure():
            return _html_figure(block)
        case Details():
            inner = "".join(_html_block(inner) for inner in block.blocks)
            return f"<details><summary>{_e(block.summary)}</summary>{inner}</details>"
    raise TypeError(f"not a report block: {block!r}")


def _html_line(parts: Line) -> str:
    return "".join(_html_inline(part) for part in parts)


def _html_inline(part: Inline) -> str:
    if isinstance(part, Link):
        if not _is_web_url(part.url):
            return _e(part.text)
        return f'<a href="{_e(part.url)}" rel="noopener">{_e(part.text)}</a>'
    if isinstance(part, Span):
        tag = "strong" if part.strong else "span"
        style = f' class="{_e(part.style)}"' if part.style else ""
        return f"<{tag}{style}>{_e(part.text)}</{tag}>"
    return _e(part)


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{_e(cell)}</th>" for cell in table.header)
    body = "".join("<tr>" + "".join(f"<td>{_html_inline(c)}</td>" for c in row) + "</tr>" for row in table.rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html_figure(figure: Figure) -> str:
    image = base64.b64encode(figure.png()).decode("ascii")
    caption = f"<figcaption>{_e(figure.caption)}</figcaption>" if figure.caption else ""
    return (
        f'<figure id="{_e(figure.anchor)}"><img src="data:image/png;base64,{image}" alt="{_e(figure.alt)}">'
        f"{caption}</figure>"
    )


# Markdown -----------------------------------------------------------------------------------------------------------

# A backslash, "<" (a tag or autolink), "|" (a table cell break), and "]" before "(" or "[" (a link or image): escaped,
# everything else left readable. Link texts escape every bracket, since theirs must not close early.
_MD_TEXT_SPECIALS = re.compile(r"[\\<|]|\](?=[(\[])")
_MD_LINK_TEXT_SPECIALS = re.compile(r"[\\<|\[\]]")
_MD_URL_SPECIALS = re.compile(r"[\s<>()|\\]")


def to_markdown(report: Report) -> str:
    """The same sections, tables and lists as the HTML page; the figures are left out."""
    lines = [f"# {_md_text(report.title)}", "", f"{_md_text(report.subtitle)}. Plots: see the HTML report.", ""]
    for section in report.sections:
        lines += [f"## {_md_text(section.title)}", ""]
        for block in section.blocks:
            lines += _md_block(block)
    return "\n".join(lines)


def _md_text(text: str, specials: re.Pattern[str] = _MD_TEXT_SPECIALS) -> str:
    """`text` on one line, shown as itself: a newline could start a heading or end a table row."""
    return specials.sub(r"\\\g<0>", " ".join(text.splitlines()))


def _md_block(block: Block) -> list[str]:
    """The block's lines followed by a blank line, or no lines at all."""
    match block:
        case Heading():
            return [f"### {_md_text(block.text)}", ""]
        case Paragraph() | Note():
            return [_md_line(block.parts), ""]
        case Table():
            return _md_table(block)
        case Bullets():
            return [f"- {_md_line(item)}" for item in block.items] + [""]
        case Figure():
            return []
        case Details():
            return [line for inner in block.blocks for line in _md_block(inner)]
    raise TypeError(f"not a report block: {block!r}")


def _md_line(parts: Line) -> str:
    return "".join(_md_inline(part) for part in parts)


def _md_inline(part: Inline) -> str:
    if isinstance(part, Link):
        if not _is_web_url(part.url):
            return _md_text(part.text)
        url = _MD_URL_SPECIALS.sub(lambda match: quote(match.group(), safe=""), part.url)
        return f"[{_md_text(part.text, _MD_LINK_TEXT_SPECIALS)}]({url})"
    if isinstance(part, Span):
        return f"**{_md_text(part.text)}**" if part.strong else _md_text(part.text)
    return _md_text(part)


def _md_table(table: Table) -> list[str]:
    lines = ["| " + " | ".join(_md_text(cell) for cell in table.header) + " |", "|" + "---|" * len(table.header)]
    lines += ["| " + " | ".join(_md_inline(cell) for cell in row) + " |" for row in table.rows]
    return [*lines, ""]
