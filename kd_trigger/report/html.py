"""A small document model rendered twice: to Markdown and to one self-contained HTML page.

The report is built once as a list of blocks, so the Markdown and the HTML can never say different
things. The HTML embeds every image as a base64 data URI and carries its own CSS: it opens offline,
from a mail attachment or a review ticket, with no network access and no files beside it.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Tone = Literal["pass", "fail", "warn", "plain"]


@dataclass(frozen=True)
class Heading:
    level: int
    text: str
    anchor: str | None = None


@dataclass(frozen=True)
class Paragraph:
    """Text with two inline markups understood by both renderers: ``**bold**`` and ```code```."""

    text: str
    tone: Tone = "plain"


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str | None = None
    # Per-row tone (PASS/FAIL colouring in HTML); empty means plain rows.
    row_tones: tuple[Tone, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Image:
    """A PNG; ``path`` is absolute, ``rel`` is how the Markdown file beside it refers to it."""

    path: Path
    rel: str
    caption: str


Block = Heading | Paragraph | Bullets | Table | Image


# -- Markdown -------------------------------------------------------------------------------------
def _md_cell(text: str) -> str:
    # A '|' inside a cell would end it; a newline would end the row.
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(blocks: list[Block]) -> str:
    """The blocks as GitHub-flavoured Markdown (images referenced by relative path)."""
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"{'#' * block.level} {block.text}")
        elif isinstance(block, Paragraph):
            out.append(block.text)
        elif isinstance(block, Bullets):
            out.append("\n".join(f"- {item}" for item in block.items))
        elif isinstance(block, Table):
            lines = []
            if block.caption:
                lines.append(f"*{block.caption}*")
                lines.append("")
            lines.append("| " + " | ".join(_md_cell(h) for h in block.header) + " |")
            lines.append("|" + "|".join("---" for _ in block.header) + "|")
            lines.extend("| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows)
            out.append("\n".join(lines))
        elif isinstance(block, Image):
            out.append(f"![{block.caption}]({block.rel})\n\n*{block.caption}*")
    return "\n\n".join(out) + "\n"


# -- HTML -----------------------------------------------------------------------------------------
_CSS = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1200px; padding: 0 1em; color: #1b1b1b; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { border-bottom: 1px solid #bbb; padding-bottom: .15em; margin-top: 2em; }
table { border-collapse: collapse; margin: .6em 0 1.2em 0; font-size: .92em; }
th, td { border: 1px solid #c8c8c8; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
tr.pass td { background: #e9f7ec; } tr.fail td { background: #fde8e8; } tr.warn td { background: #fff6dd; }
p.pass { color: #0b6b24; font-weight: bold; } p.fail { color: #a30d0d; font-weight: bold; }
p.warn { color: #8a5a00; font-weight: bold; }
code { background: #f4f4f4; padding: 0 .2em; font-family: Menlo, Consolas, monospace; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-style: italic; color: #555; }
caption { caption-side: top; text-align: left; font-style: italic; padding-bottom: .2em; }
"""


def _inline(text: str) -> str:
    """Escape, then apply the two inline markups (their markers survive escaping unchanged)."""
    escaped = html.escape(text, quote=False)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", escaped)


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def render_html(blocks: list[Block], title: str) -> str:
    """The blocks as one HTML page: inline CSS, images as data URIs, no external references."""
    body: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            anchor = f' id="{html.escape(block.anchor)}"' if block.anchor else ""
            body.append(f"<h{block.level}{anchor}>{_inline(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            cls = f' class="{block.tone}"' if block.tone != "plain" else ""
            body.append(f"<p{cls}>{_inline(block.text)}</p>")
        elif isinstance(block, Bullets):
            items = "".join(f"<li>{_inline(item)}</li>" for item in block.items)
            body.append(f"<ul>{items}</ul>")
        elif isinstance(block, Table):
            parts = ["<table>"]
            if block.caption:
                parts.append(f"<caption>{_inline(block.caption)}</caption>")
            parts.append("<tr>" + "".join(f"<th>{_inline(h)}</th>" for h in block.header) + "</tr>")
            for i, row in enumerate(block.rows):
                tone = block.row_tones[i] if i < len(block.row_tones) else "plain"
                cls = f' class="{tone}"' if tone != "plain" else ""
                parts.append(f"<tr{cls}>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>")
            parts.append("</table>")
            body.append("".join(parts))
        elif isinstance(block, Image):
            alt = html.escape(block.caption)
            body.append(
                f'<figure><img src="{_data_uri(block.path)}" alt="{alt}">'
                f"<figcaption>{_inline(block.caption)}</figcaption></figure>"
            )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
