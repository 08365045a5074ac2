"""The repository documents itself: no file points outside it, and every relative link in
its Markdown resolves to a file that exists."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUTSIDE = re.compile(
    r"\.\./shared|shared/(?:spec|research|MEDIA|DESIGN|STYLE)|contract-facts\.md|(?<![\w/])MEDIA\.md"
)
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
TRACKER = re.compile(r"\bissues?\s*#?\d+\b", re.IGNORECASE)
"""A tracker issue named in the text: an outside reader has no tracker (history is in commits)."""


def _tracked() -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [ROOT / line for line in listed.splitlines() if (ROOT / line).is_file()]


def _texts() -> Iterator[tuple[Path, str]]:
    """Every tracked text file but this one (which names what it looks for), with its text."""
    this = Path(__file__).resolve()
    for path in _tracked():
        if path != this and path.suffix not in (".png", ".svg"):
            yield path, path.read_text(errors="replace")


def test_no_file_points_outside_the_repository() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}"
        for path, text in _texts()
        for number, line in enumerate(text.splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert not offenders, "\n".join(offenders)


def test_no_file_names_a_tracker_issue() -> None:
    # Joined lines too: a reference can break across a line end in prose.
    offenders = [
        f"{path.relative_to(ROOT)}: …{match[0]}…"
        for path, text in _texts()
        for match in TRACKER.finditer(" ".join(text.split()))
    ]
    assert not offenders, "\n".join(offenders)


def test_every_relative_markdown_link_resolves() -> None:
    broken = []
    for path in _tracked():
        if path.suffix != ".md":
            continue
        for target in LINK.findall(path.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (path.parent / target).exists():
                broken.append(f"{path.relative_to(ROOT)} → {target}")
    assert not broken, broken


def test_the_signalling_document_names_every_message_of_the_protocol() -> None:
    from simulator import protocol

    text = (ROOT / "docs" / "signalling.md").read_text()
    tags = [
        m.__struct_config__.tag
        for union in (protocol.ClientMessage, protocol.ServerMessage, protocol.ChatServerMessage)
        for m in union.__args__
    ]
    tags.append(protocol.ChatLogin.__struct_config__.tag)
    missing = [tag for tag in tags if f'"type": "{tag}"' not in text and f"`{tag}" not in text]
    assert not missing, f"messages the protocol has and docs/signalling.md does not describe: {missing}"
