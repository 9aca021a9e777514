"""The readiness report as one self-contained HTML page, for tickets and change boards.

Theory of this module
---------------------
* A rendering of :class:`scanner.readiness.Readiness` and nothing else: every status, state
  and sentence comes from the model.
* One file: inline CSS, no scripts, no external assets, and a print stylesheet, because it
  ends up attached to tickets and printed. On a phone each table becomes one card per row.
* Everything that comes from the network or a certificate is ``html.escape``'d, so a hostile
  SAN cannot script the page a change board opens.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

from scanner import readiness_acceptance as acceptance
from scanner.readiness import Readiness
from scanner.readiness_checks import State

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1f24;
max-width:1100px;margin:2em auto;padding:0 1em}
h1{font-size:1.5em;margin:0 0 .3em}h2{font-size:1.2em;margin:1.6em 0 .5em;border-bottom:1px solid #ccd}
h3{font-size:1em;margin:1.2em 0 .3em}
.verdict{padding:.8em 1em;border-radius:6px;font-size:1.1em;border:2px solid}
.ready{background:#e8f5e9;border-color:#2e7d32}.notready{background:#fdecea;border-color:#c62828}
.ready.v-WARNING{background:#fff8e1;border-color:#b26a00}
table{border-collapse:collapse;width:100%;margin:.5em 0}
th,td{border:1px solid #c9ced6;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#eef1f5}td{overflow-wrap:break-word}.nw{white-space:nowrap}
.OK,.present,.yes{color:#1b5e20;font-weight:600}.WARNING{color:#8a5300;font-weight:600}
.CRITICAL,.missing,.NO{color:#b71c1c;font-weight:700}.UNKNOWN,.unknown{color:#4a148c;font-weight:700}
.missing.WARNING{color:#8a5300}
pre{background:#f4f6f8;padding:.6em;border:1px solid #c9ced6;overflow-x:auto;white-space:pre-wrap}
.meta{color:#555}
@media print{body{margin:0;max-width:none;font-size:10pt}a{color:inherit}
.verdict{border-width:1px}tr,pre,.remedy{page-break-inside:avoid}h2{page-break-after:avoid}
th{background:#eee!important;-webkit-print-color-adjust:exact;print-color-adjust:exact}}
@media screen and (max-width:700px){body{margin:1em auto}
table.stack,table.stack tbody,table.stack tr,table.stack td{display:block;width:auto}
table.stack thead{display:none}table.stack tr{border:1px solid #c9ced6;margin:.6em 0;padding:.3em .6em}
table.stack td{border:0;padding:.1em 0}table.stack td:empty{display:none}
table.stack td::before{content:attr(data-label) ": ";font-weight:400;color:#555}}
"""


def _h(text: object) -> str:
    return html.escape(str(text), quote=True)


def _hn(text: object) -> str:
    """Escaped, with a line-break opportunity after each dot: a long DNS name wraps between
    labels, never inside one (``overflow-wrap:anywhere`` once broke "present" into "prese/nt")."""
    return _h(text).replace(".", ".<wbr>")


def _table(headers: Sequence[str], rows: Iterable[Sequence[tuple[str, str]]]) -> list[str]:
    """A table that becomes one card per row on a phone (``data-label`` names each cell).
    Each cell is ``(html, css class)``; the html is already escaped."""
    out = ['<table class="stack"><thead><tr>' + "".join(f"<th>{_h(h)}</th>" for h in headers)
           + "</tr></thead><tbody>"]
    for row in rows:
        cells = "".join(f'<td data-label="{_h(h)}"' + (f' class="{_h(css)}"' if css else "") + f">{text}</td>"
                        for h, (text, css) in zip(headers, row, strict=True))
        out.append(f"<tr>{cells}</tr>")
    out.append("</tbody></table>")
    return out


def render_html(r: Readiness) -> str:
    word = r.verdict_word
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>fedscan readiness: {_h(word)} ({_h(r.subject)})</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>fedscan go-live readiness</h1>",
        f'<p class="verdict {"ready" if r.ready else "notready"} v-{r.status.name}">'
        f"<strong>{_h(word)}</strong> "
        f"({_h(r.status.name)}): {_h('; '.join(r.reasons))}</p>",
        f'<p class="meta">Generated {_h(r.generated_at)} from {_hn(r.source)}.</p>',
        "<h2>Certificate</h2>",
        f"<p>Subject (Access Edge FQDN): <code>{_hn(r.subject)}</code>. Judged on: "
        + (", ".join(_h(c) for c in r.certificates) or "no certificate retrieved") + ".</p>",
    ]
    out += _table(("Item", "Required", "Why", "State", "Detail"), (
        ((_h(q.item), ""), (f"<code>{_hn(q.required)}</code>", ""), (_h(q.why), ""),
         (_h(q.state_words), f"nw {q.state} {q.status.name}" if q.state is State.MISSING
          else f"nw {q.state}"),
         (_hn(q.detail), ""))
        for q in r.requirements))
    if r.dns is not None:
        out.append("<h2>DNS</h2>")
        out += _table(("Record", "Expected", "Found", "OK"), (
            ((f"<code>{_hn(d.record)}</code>", ""), (f"<code>{_hn(d.expected)}</code>", ""),
             (_hn(d.found), ""), ("yes" if d.ok else "NO", "nw " + ("yes" if d.ok else "NO")))
            for d in r.dns))
        publish = [d.publish for d in r.dns if d.publish]
        if publish:
            out.append("<p>Publish:</p><pre>" + "\n".join(_h(p) for p in publish) + "</pre>")
    if r.endpoints is not None:
        out.append("<h2>Endpoints</h2>")
        out += _table(("Domain", "Service", "Target", "Address", "TLS", "Status", "Findings"), (
            ((_hn(e.domain), ""), (_h(e.service), "nw"), (_hn(f"{e.target}:{e.port}"), ""),
             (_h(e.address), ""), (_h(e.tls), "nw"), (e.status.name, f"nw {e.status.name}"),
             (_h(", ".join(e.findings) or "-"), ""))
            for e in r.endpoints))
    if r.dane is not None:
        out.append("<h2>DANE</h2>")
        if r.dane.note:
            out.append(f"<p>{_h(r.dane.note)}</p>")
        if r.dane.rows:
            out += _table(("Where", "TLSA", "Status", "Verdict"), (
                ((_hn(d.where), ""), (f"<code>{_hn(d.tlsa)}</code>", ""),
                 (d.status.name, f"nw {d.status.name}"), (_h(d.verdict), ""))
                for d in r.dane.rows))
    out += acceptance.html(r.accepted_by, _h)
    out.append("<h2>Remediation</h2>")
    if not r.remedies:
        out.append("<p>Nothing to fix.</p>")
    for m in r.remedies:
        out += [f'<div class="remedy"><h3><span class="{m.status.name}">{m.status.name}</span> '
                f"<code>{_h(m.code)}</code></h3>",
                f"<p>{_h(m.summary)}</p><p><strong>Fix:</strong> {_h(m.remedy)}</p><ul>"]
        out += [f"<li>{_h(w)}</li>" for w in m.where]
        out.append("</ul></div>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
