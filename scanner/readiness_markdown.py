"""The readiness report as Markdown: for a change ticket, a wiki page or a terminal.

Theory of this module
---------------------
* A rendering of :class:`scanner.readiness.Readiness` and nothing else: every status, state
  and sentence comes from the model; this module only lays it out and escapes it.
* Everything that comes from the network or a certificate is escaped (:func:`_md`): Markdown
  renderers pass inline HTML through, and ``|`` would break a table, so a hostile SAN can
  neither script the page a change board opens nor forge a row. The records to publish are
  the one exception: a fenced code block, verbatim for copying into a zone file.
"""

from __future__ import annotations

import re

from scanner import readiness_acceptance as acceptance
from scanner.findings import Status
from scanner.readiness import Readiness
from scanner.readiness_checks import State
from scanner.safe_text import one_line


def _md(text: object) -> str:
    """Escape text from certificates/the network for a Markdown table cell: every character
    Markdown or inline HTML gives a meaning is backslash-escaped (CommonMark shows ``\\<`` as
    ``<``), so the text reads as itself in a renderer and in the raw file (no ``&lt;``)."""
    s = one_line(str(text))  # also no terminal escapes for whoever reads the raw file
    return re.sub(r"([\\`*_\[\]|#!<>&])", r"\\\1", s)


def render_markdown(r: Readiness) -> str:
    lines = [
        "# fedscan go-live readiness",
        "",
        f"**{r.verdict_word}** ({r.status.name}): {_md('; '.join(r.reasons))}",
        "",
        f"Generated {r.generated_at} from {_md(r.source)}.",
        "",
        "## Certificate",
        "",
        f"Subject (Access Edge FQDN): {_md(r.subject)}. Judged on: "
        + (", ".join(_md(c) for c in r.certificates) or "no certificate retrieved") + ".",
        "",
        "| Item | Required | Why | State | Detail |",
        "|---|---|---|---|---|",
    ]
    for q in r.requirements:
        state = q.state_words
        state = state.upper() if q.state is State.MISSING and q.status is Status.CRITICAL else state
        lines.append(f"| {_md(q.item)} | {_md(q.required)} | {_md(q.why)} | {state} | {_md(q.detail)} |")
    if r.dns is not None:
        lines += ["", "## DNS", "", "| Record | Expected | Found | OK |", "|---|---|---|---|"]
        for d in r.dns:
            lines.append(f"| {_md(d.record)} | {_md(d.expected)} | {_md(d.found)} | "
                         f"{'yes' if d.ok else 'NO'} |")
        publish = [d.publish for d in r.dns if d.publish]
        if publish:
            # verbatim, for copying (Markdown does not decode entities inside a code block):
            # the records are built from validated config names, and the fence is longer than
            # any backtick run in them, so nothing can close the block early
            fence = "`" * max(3, 1 + max(len(m) for p in publish for m in ["", *re.findall(r"`+", p)]))
            lines += ["", "Publish:", "", fence, *publish, fence]
    if r.endpoints is not None:
        lines += ["", "## Endpoints", "", "| Domain | Service | Target | Address | TLS | Status | Findings |",
                  "|---|---|---|---|---|---|---|"]
        for e in r.endpoints:
            lines.append(f"| {_md(e.domain)} | {_md(e.service)} | {_md(f'{e.target}:{e.port}')} | "
                         f"{_md(e.address)} | {_md(e.tls)} | {e.status.name} | "
                         f"{_md(', '.join(e.findings) or '-')} |")
    if r.dane is not None:
        lines += ["", "## DANE", ""]
        if r.dane.note:
            lines.append(_md(r.dane.note))
        if r.dane.rows:
            lines += ["| Where | TLSA | Status | Verdict |", "|---|---|---|---|"]
            lines += [f"| {_md(d.where)} | {_md(d.tlsa)} | {d.status.name} | {_md(d.verdict)} |"
                      for d in r.dane.rows]
    lines += acceptance.markdown(r.accepted_by, _md)
    lines += ["", "## Remediation", ""]
    if not r.remedies:
        lines.append("Nothing to fix.")
    for m in r.remedies:
        lines += [f"### {m.status.name}: {_md(m.code)}", "", f"{_md(m.summary)}", "",
                  f"**Fix:** {_md(m.remedy)}", ""]
        lines += [f"- {_md(w)}" for w in m.where]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
