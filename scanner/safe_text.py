"""Peer text made safe for a terminal or a one-line format, character for character.

Certificate subjects and SANs, XMPP error texts, SIP reason phrases and DNS names come from
peers we do not control. In a terminal, an ESC starts a sequence that can recolour, clear or
retitle the screen, hide text or forge a hyperlink (OSC 8); a carriage return or a newline can
forge a line of our own report; a bidi override reorders what is read. :func:`visible` maps
every such character to one visible stand-in: C0 controls to their Unicode Control Pictures
(ESC shows as ``␛``, newline as ``␊``), DEL to ``␡``, C1 controls and bidi controls to ``�``.
One character for one, so a styled line keeps its style spans. JSON needs none of this (it
escapes controls itself); HTML and Markdown escape their own metacharacters on top of it.
"""

from __future__ import annotations

from typing import Final

_BIDI: Final = (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C)
_VISIBLE: Final = {
    **{c: 0x2400 + c for c in range(0x20)},
    0x7F: 0x2421,
    **dict.fromkeys(range(128, 160), 65533),
    **dict.fromkeys(_BIDI, 65533),
}


def visible(text: str) -> str:
    """``text`` with every control, C1 and bidi character replaced by a visible stand-in."""
    return text.translate(_VISIBLE)


def one_line(text: str) -> str:
    """For line formats (Nagios, Markdown cells): whitespace controls become a space, the
    rest :func:`visible`."""
    return visible(text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ").replace("\t", " "))
