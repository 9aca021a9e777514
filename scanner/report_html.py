"""``fedscan report html``: one self-contained page for a team to read a scan or a census.

Theory of this module
---------------------
* Input is the JSON of ``fedscan scan --format json`` or ``fedscan report merge`` (one shape,
  schema_version 1). The page is one file: inline CSS, one inline script, no external asset,
  so it can be mailed, attached to a ticket or opened from a share.
* Everything a reader needs without scripts (a mail reader blocks them) is plain HTML: the
  overall status and counts, when and how the scan ran, an expiry chart of the certificates
  (CSS bars, readable at a glance and in print), the certificates that end soonest, and every
  finding code with its remedy and where it applies.
* The endpoint table (sortable, filterable by status, finding code and text) is drawn by the
  script from the embedded data, at most :data:`PAGE_ROWS` rows at a time: a merged census of
  10,000 endpoints opens in well under two seconds (``make bench``-style measurement in the
  issue note), where 10,000 static rows would make the browser lay out all of them first.
* Peer-controlled text (subjects, SANs, DNS names, error texts) is data, never markup: the
  static parts are ``html.escape``'d; the embedded JSON escapes ``<``, ``>`` and ``&`` so it
  cannot end its ``<script>`` element; the script writes ``textContent`` only; and a
  Content-Security-Policy allows no script but ours (by hash), so even an escaping mistake
  could not run anything.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from scanner.certsummary import CertSummary
from scanner.findings import CODES, Finding, Status, status_of, worst
from scanner.isotime import iso
from scanner.results import TlsInfo, read_findings

PAGE_ROWS = 500  # endpoint rows drawn at once; "show more" draws the next
PLACES_SHOWN = 12  # places listed under each finding code
CERTS_SHOWN = 50  # certificates listed, soonest end first

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1f24;
max-width:1200px;margin:1.5em auto;padding:0 1em}
h1{font-size:1.5em;margin:0 0 .3em}h2{font-size:1.2em;margin:1.6em 0 .5em;border-bottom:1px solid #ccd}
.verdict{padding:.7em 1em;border-radius:6px;font-size:1.1em;border:2px solid #888}
.v-OK{background:#e8f5e9;border-color:#2e7d32}.v-WARNING{background:#fff8e1;border-color:#b26a00}
.v-CRITICAL{background:#fdecea;border-color:#c62828}.v-UNKNOWN{background:#f3e5f5;border-color:#6a1b9a}
.counts{display:flex;flex-wrap:wrap;gap:.5em;margin:.8em 0;padding:0;list-style:none}
.counts li{border:1px solid #c9ced6;border-radius:6px;padding:.3em .8em;min-width:7em}
.counts b{display:block;font-size:1.4em}
table{border-collapse:collapse;width:100%;margin:.5em 0}
th,td{border:1px solid #c9ced6;padding:.25em .5em;text-align:left;vertical-align:top;overflow-wrap:break-word}
th{background:#eef1f5;white-space:nowrap}th button{all:unset;cursor:pointer}
th button::after{content:" \\2195";color:#889}
.OK{color:#1b5e20;font-weight:600}.WARNING{color:#8a5300;font-weight:600}
.CRITICAL{color:#b71c1c;font-weight:700}.UNKNOWN{color:#4a148c;font-weight:700}
.nw{white-space:nowrap}.codes{white-space:pre}.wide{overflow-x:auto}.num{text-align:right;white-space:nowrap}.meta{color:#555}
dl.opts{display:grid;grid-template-columns:max-content 1fr;gap:.1em 1em}
dl.opts dt{color:#555}dl.opts dd{margin:0}
.chart{max-width:40em}
.bar{display:grid;grid-template-columns:7em 1fr 4em;gap:.5em;align-items:center;margin:.15em 0}
.track{background:#eef1f5;height:1em;border-radius:3px;overflow:hidden}.fill{display:block;height:100%}
.f-CRITICAL{background:#c62828}.f-WARNING{background:#e0a000}.f-OK{background:#43a047}
.code{margin:1em 0;padding-left:.8em;border-left:4px solid #c9ced6}.code h3{font-size:1em;margin:0 0 .2em}
.filters{display:flex;flex-wrap:wrap;gap:.6em;align-items:center;margin:.5em 0}
@media screen and (max-width:700px){body{margin:.8em auto}table{font-size:.9em}}
@media print{body{margin:0;max-width:none;font-size:9pt}.filters,#more{display:none}
.wide{overflow:visible}.codes{white-space:pre-wrap}
#endpoints th:nth-child(n+9),#endpoints td:nth-child(n+9){display:none}
tr,.code,.bar{page-break-inside:avoid}h2{page-break-after:avoid}
.fill,.verdict,th{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
"""

# The endpoint table. Rows are arrays: [domain, service, target, address, port, status,
# days_left, [codes], tls, subject]; it writes text only (textContent), never markup.
_SCRIPT = """
(function(){
"use strict";
var D=JSON.parse(document.getElementById("fedscan-data").textContent);
var R=D.rows,RANK={OK:0,WARNING:1,UNKNOWN:2,CRITICAL:3},PAGE=D.page,limit=PAGE;
var body=document.querySelector("#endpoints tbody"),shown=document.getElementById("shown");
var fs=document.getElementById("f-status"),fc=document.getElementById("f-code"),
ft=document.getElementById("f-text");
var more=document.getElementById("more"),sortCol=5,sortDir=-1;
var KEYS=[function(r){return r[0]},function(r){return r[1]},function(r){return r[2]},
function(r){return r[3]},function(r){return r[4]},function(r){return RANK[r[5]]},
function(r){return r[6]===null?1e9:r[6]},function(r){return r[7].join(" ")},
function(r){return r[8]},function(r){return r[9]}];
function cmp(a,b){var k=KEYS[sortCol],x=k(a),y=k(b);
if(x<y)return -sortDir;if(x>y)return sortDir;return a[0]<b[0]?-1:a[0]>b[0]?1:0}
function cell(tr,text,cls){var td=document.createElement("td");td.textContent=text;
if(cls)td.className=cls;tr.appendChild(td)}
function draw(){
var st=fs.value,code=fc.value,q=ft.value.toLowerCase();
var list=R.filter(function(r){return(!st||r[5]===st)&&(!code||r[7].indexOf(code)>=0)&&
(!q||(r[0]+" "+r[2]+" "+r[3]+" "+r[9]).toLowerCase().indexOf(q)>=0)});
list.sort(cmp);
var frag=document.createDocumentFragment();
list.slice(0,limit).forEach(function(r){var tr=document.createElement("tr");
cell(tr,r[0]);cell(tr,r[1],"nw");cell(tr,r[2]);cell(tr,r[3]);cell(tr,r[4]?String(r[4]):"","num");
cell(tr,r[5],"nw "+r[5]);cell(tr,r[6]===null?"":String(r[6]),"num");cell(tr,r[7].join("\\n"),"codes");
cell(tr,r[8],"nw");cell(tr,r[9]);frag.appendChild(tr)});
body.replaceChildren(frag);
shown.textContent=Math.min(limit,list.length)+" of "+list.length+" matching rows shown ("+R.length+" in all)";
more.hidden=list.length<=limit}
document.querySelectorAll("#endpoints th button").forEach(function(b,i){b.addEventListener("click",function(){
if(sortCol===i)sortDir=-sortDir;else{sortCol=i;sortDir=(i===5||i===7)?-1:1}
document.querySelectorAll("#endpoints th").forEach(function(th,j){th.setAttribute("aria-sort",
j===sortCol?(sortDir>0?"ascending":"descending"):"none")});limit=PAGE;draw()})});
[fs,fc].forEach(function(e){e.addEventListener("change",function(){limit=PAGE;draw()})});
ft.addEventListener("input",function(){limit=PAGE;draw()});
more.addEventListener("click",function(){limit+=PAGE*4;draw()});
var h=new URLSearchParams(location.hash.slice(1));
if(h.get("status"))fs.value=h.get("status");if(h.get("code"))fc.value=h.get("code");
document.documentElement.classList.add("js");draw()})();
"""
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
_CSP = (f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{_SCRIPT_HASH}'; "
        "base-uri 'none'; form-action 'none'")
_HEADERS = ("Domain", "Service", "Target", "Address", "Port", "Status", "Days left", "Findings", "TLS",
            "Subject")


def _h(text: object) -> str:
    return html.escape(str(text), quote=True)


def _json_for_script(data: object) -> str:
    """JSON that cannot end its <script> element nor open a comment: <, >, & as \\u escapes."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _codes(findings: Iterable[Finding]) -> list[str]:
    return list(dict.fromkeys(f.code for f in findings))


def _tls_version(endpoint: Mapping[str, Any]) -> str:
    try:
        return TlsInfo.from_json(endpoint.get("tls")).version
    except ValueError:  # no handshake (null), or damaged
        return ""


def rows(doc: Mapping[str, Any]) -> list[list[Any]]:
    """One row per endpoint, and one "DNS" row per domain with domain or service findings."""
    out: list[list[Any]] = []
    for d in doc.get("domains", []):
        domain = str(d.get("domain", ""))
        dns_findings = read_findings(d.get("findings", [])) + [
            f for s in d.get("services", []) for f in read_findings(s.get("findings", []))]
        endpoints = d.get("endpoints", [])
        if dns_findings or not endpoints:
            status = status_of(dns_findings).name if dns_findings else str(d.get("status", "UNKNOWN"))
            out.append([domain, "DNS", "", "", 0, status, None, _codes(dns_findings), "", ""])
        for e in endpoints:
            cert = _leaf(e)
            out.append([domain, str(e.get("service", "")), str(e.get("target", "")),
                        str(e.get("address", "")), int(e.get("port") or 0), str(e.get("status", "UNKNOWN")),
                        cert.days_left if cert else None, _codes(read_findings(e.get("findings", []))),
                        _tls_version(e), cert.subject if cert else ""])
    return out


def _leaf(endpoint: Mapping[str, Any]) -> CertSummary | None:
    """The endpoint's leaf, read back through the schema's one reader; a damaged summary in a
    hand-edited file shows as no certificate rather than stopping the page."""
    data = endpoint.get("certificate")
    if not isinstance(data, Mapping):
        return None
    try:
        return CertSummary.from_json(data)
    except ValueError:
        return None


def _certificates(doc: Mapping[str, Any]) -> list[tuple[CertSummary, list[str]]]:
    by_sha: dict[str, tuple[CertSummary, list[str]]] = {}
    for d in doc.get("domains", []):
        for e in d.get("endpoints", []):
            cert = _leaf(e)
            if cert is not None and cert.days_left is not None:
                entry = by_sha.setdefault(cert.sha256, (cert, []))
                entry[1].append(f"{e.get('target')} [{e.get('address')}]:{e.get('port')}")
    return sorted(by_sha.values(), key=lambda c: c[0].days_left or 0)


def _expiry_chart(certs: Sequence[tuple[CertSummary, list[str]]], warn: int, crit: int) -> list[str]:
    buckets = [("expired", None, 0, "CRITICAL"), (f"< {crit} days", 0, crit, "CRITICAL"),
               (f"< {warn} days", crit, warn, "WARNING"), ("< 90 days", warn, 90, "OK"),
               ("< 1 year", 90, 365, "OK"), ("1 year +", 365, None, "OK")]
    counts = []
    for label, low, high, status in buckets:
        n = sum(1 for c, _ in certs if (low is None or (c.days_left or 0) >= low)
                and (high is None or (c.days_left or 0) < high))
        counts.append((label, n, status))
    top = max((n for _, n, _ in counts), default=0) or 1
    out = ['<div class="chart" role="img" aria-label="certificates by days left">']
    for label, n, status in counts:
        out.append(f'<div class="bar"><span>{_h(label)}</span><span class="track"><span class="fill '
                   f'f-{status}" style="width:{100 * n / top:.1f}%"></span></span>'
                   f'<span class="num">{n}</span></div>')
    out.append("</div>")
    return out


def _findings_by_code(doc: Mapping[str, Any]) -> list[str]:
    places: dict[str, list[str]] = {}
    worst_of: dict[str, Status] = {}

    def add(found: object, where: str) -> None:
        for f in read_findings(found):
            places.setdefault(f.code, []).append(f"{where}: {f.message}")
            worst_of[f.code] = worst([worst_of.get(f.code, Status.OK), f.status])

    for d in doc.get("domains", []):
        add(d.get("findings", []), str(d.get("domain")))
        for s in d.get("services", []):
            add(s.get("findings", []), f"{d.get('domain')} ({s.get('service')})")
        for e in d.get("endpoints", []):
            add(e.get("findings", []), f"{d.get('domain')} {e.get('service')} {e.get('target')} "
                                       f"[{e.get('address')}]:{e.get('port')}")
    out: list[str] = []
    for code in sorted(places, key=lambda c: (-worst_of[c].rank, -len(places[c]), c)):
        info = CODES.get(code)
        status = worst_of[code].name
        where = places[code]
        out.append(f'<div class="code" id="code-{_h(code)}"><h3><span class="{status}">{status}</span> '
                   f"<code>{_h(code)}</code> — {len(where)} place{'' if len(where) == 1 else 's'}</h3>")
        if info is not None:
            out.append(f"<p>{_h(info.summary)}<br><strong>Fix:</strong> {_h(info.remedy)}</p>")
        out.append("<ul>" + "".join(f"<li>{_h(w)}</li>" for w in where[:PLACES_SHOWN]) + "</ul>")
        if len(where) > PLACES_SHOWN:
            out.append(f'<p class="meta">… and {len(where) - PLACES_SHOWN} more (filter the table by '
                       f"<code>{_h(code)}</code>)</p>")
        out.append("</div>")
    return out or ["<p>No findings.</p>"]


def _fact(value: object) -> object:
    return ("yes" if value else "no") if isinstance(value, bool) else value


def render_report_html(doc: Mapping[str, Any], source: str = "") -> str:
    """The page in reading order: verdict, how the scan ran, certificates, the endpoint table,
    then every finding with its remedy; the data the table's script draws from comes last, so
    the parts readable without scripts are complete before it."""
    options: Mapping[str, Any] = doc.get("options") or {}
    warn, crit = int(options.get("warn_days", 30)), int(options.get("crit_days", 14))
    table_rows = rows(doc)
    out = [
        *_verdict(doc),
        *_scan_facts(doc, source),
        *_certificate_section(_certificates(doc), warn, crit),
        *_endpoint_table(table_rows),
        "<h2>Findings and what to do</h2>",
        *_findings_by_code(doc),
        f'<script type="application/json" id="fedscan-data">'
        f"{_json_for_script({'page': PAGE_ROWS, 'rows': table_rows})}</script>",
        f"<script>{_SCRIPT}</script>",
        "</body></html>",
    ]
    return "\n".join(out) + "\n"


def _verdict(doc: Mapping[str, Any]) -> list[str]:
    """The head and the first thing a reader sees: the overall status and the counts, by
    endpoint and (where any) by domain, worst first; the title says it too, for a tab or a
    mail attachment."""
    status = str(doc.get("status", "UNKNOWN"))
    counts: Mapping[str, int] = doc.get("endpoint_counts") or {}
    domains = doc.get("domains", [])
    domain_counts = Counter(str(d.get("status", "UNKNOWN")) for d in domains)
    total = sum(counts.values())
    note = " — INTERRUPTED: not every endpoint was checked" if doc.get("interrupted") else ""
    by_rank = sorted(Status, key=lambda s: -s.rank)
    return [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_h(_CSP)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>fedscan report: {_h(status)}, {total} endpoints of {len(domains)} domains</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>fedscan report</h1>",
        f'<p class="verdict v-{_h(status)}"><strong>{_h(status)}</strong>: {total} endpoints of '
        f"{len(domains)} domains{_h(note)}</p>",
        '<ul class="counts">',
        *(f'<li><b class="{s.name}">{int(counts.get(s.name, 0))}</b>{s.name} endpoints</li>'
          for s in by_rank),
        *(f'<li><b class="{s.name}">{domain_counts.get(s.name, 0)}</b>{s.name} domains</li>'
          for s in by_rank if domain_counts.get(s.name)),
        "</ul>",
    ]


def _scan_facts(doc: Mapping[str, Any], source: str) -> list[str]:
    """When, from what and with which options the scan ran: a report read weeks later must
    say what it is a report of. Facts that are absent are left out, not shown empty."""
    facts: list[tuple[str, object]] = [
        ("source", source), ("started", doc.get("started_at")), ("finished", doc.get("finished_at")),
        ("judged as of", doc.get("evaluated_at")), ("interrupted", doc.get("interrupted")),
    ]
    shards = doc.get("shards")
    if isinstance(shards, Mapping):
        facts.append(("shards", f"{shards.get('files')} files merged"
                      + (f"; incomplete: {', '.join(map(str, shards.get('incomplete') or []))}"
                         if shards.get("incomplete") else "")))
    options: Mapping[str, Any] = doc.get("options") or {}
    facts += [(k.replace("_", " "), ", ".join(map(str, v)) if isinstance(v, list) else v)
              for k, v in options.items()]
    deployment = doc.get("deployment")
    if deployment:
        facts.append(("deployment", json.dumps(deployment, ensure_ascii=False)))
    return ["<h2>Scan</h2>", '<dl class="opts">',
            *(f"<dt>{_h(k)}</dt><dd>{_h(_fact(v))}</dd>" for k, v in facts if v not in (None, "")),
            "</dl>"]


def _certificate_section(certs: Sequence[tuple[CertSummary, list[str]]], warn: int, crit: int) -> list[str]:
    """The expiry chart for the whole census, then the certificates that end soonest: the
    renewals to plan, each with the places it is served, coloured by the scan's thresholds."""
    out = ["<h2>Certificates by days left</h2>",
           f'<p class="meta">{len(certs)} distinct certificates; warning at {warn} days, critical at '
           f"{crit}.</p>", *_expiry_chart(certs, warn, crit)]
    if not certs:
        return out
    out.append('<div class="wide"><table><thead><tr><th>Days left</th><th>Not after</th><th>Subject</th>'
               "<th>Issuer</th><th>Served on</th></tr></thead><tbody>")
    for cert, where in certs[:CERTS_SHOWN]:
        days = cert.days_left or 0
        cls = "CRITICAL" if days < crit else "WARNING" if days < warn else ""
        served = ", ".join(where[:3]) + (f" and {len(where) - 3} more" if len(where) > 3 else "")
        out.append(f'<tr><td class="num {cls}">{days}</td><td class="nw">{_h(iso(cert.not_after))}</td>'
                   f"<td>{_h(cert.subject)}</td><td>{_h(cert.issuer)}</td>"
                   f"<td>{_h(served)}</td></tr>")
    out.append("</tbody></table></div>")
    if len(certs) > CERTS_SHOWN:
        out.append(f'<p class="meta">The {CERTS_SHOWN} that end soonest of {len(certs)}.</p>')
    return out


def _endpoint_table(table_rows: Sequence[Sequence[Any]]) -> list[str]:
    """The empty table and its filters; the script fills it from the embedded rows. The
    finding filter offers only the codes that occur, so every choice matches something."""
    codes = sorted({c for r in table_rows for c in r[7]})
    return [
        "<h2>Domains and endpoints</h2>",
        '<div class="filters"><label>Status <select id="f-status"><option value="">any</option>',
        *(f'<option value="{s.name}">{s.name}</option>' for s in sorted(Status, key=lambda s: -s.rank)),
        '</select></label><label>Finding <select id="f-code"><option value="">any</option>',
        *(f'<option value="{_h(c)}">{_h(c)}</option>' for c in codes),
        '</select></label><label>Search <input id="f-text" type="search" placeholder="domain, name, address">'
        '</label><span id="shown" class="meta"></span></div>',
        '<div class="wide"><table id="endpoints"><thead><tr>',
        *(f'<th aria-sort="{"descending" if h == "Status" else "none"}"><button type="button">{_h(h)}'
          "</button></th>" for h in _HEADERS),
        "</tr></thead><tbody></tbody></table></div>",
        '<p><button type="button" id="more" hidden>Show more</button></p>',
        f"<noscript><p>The table of {len(table_rows)} rows needs scripts; everything above and below is "
        "complete without them.</p></noscript>",
    ]
