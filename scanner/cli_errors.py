"""Usage errors in our words: one line that names the option, says what is wrong and what to do.

Theory of this module
---------------------
typer (through its vendored click) reports bad usage in its own words: "not a valid float
range", "(Possible options: --verbose)", a usage banner for a command group called bare. Those
exceptions are not typer's public API, so they are read here by duck typing (class name and a
few attributes, each looked up with ``getattr``) and turned into one of our lines; anything not
recognised keeps click's own message, still as one line. The domain and host checks that
guess an intent (a URL, a ``host:port``) live here too, so every command words them alike.
"""

from __future__ import annotations

import difflib
import re
import socket
from typing import Any

_UNITS = {
    "--timeout": "a number of seconds, e.g. 10",
    "--concurrency": "a whole number, e.g. 64",
    "--warn-days": "a whole number of days, e.g. 30",
    "--crit-days": "a whole number of days, e.g. 14",
    "--dns-port": "a port number, 0-65535",
}


def usage_message(exc: BaseException) -> str | None:
    """Our one line for a typer/click usage error, or None if ``exc`` is not one."""
    format_message = getattr(exc, "format_message", None)
    if not callable(format_message):
        return None
    kind = type(exc).__name__
    ctx = getattr(exc, "ctx", None)
    command = str(getattr(ctx, "command_path", "") or "fedscan")
    see = f" (see {command} --help)"
    if kind == "NoSuchOption":
        option = str(getattr(exc, "option_name", "") or "")
        known = _option_names(ctx)
        close = difflib.get_close_matches(option, known, n=1, cutoff=0.75)
        hint = f"; did you mean {close[0]}?" if close else ""
        return f"{command}: no such option {option}{hint}{see}"
    if kind == "NoArgsIsHelpError" or (kind == "UsageError" and str(format_message()).startswith("Usage:")):
        commands = _subcommands(ctx)
        if commands:
            return f"{command}: give a command: {', '.join(commands)}{see}"
        return f"{command}: nothing to do{see}"
    param = getattr(exc, "param", None)
    name = _param_name(param)
    if kind == "MissingParameter":
        if getattr(param, "param_type_name", "") == "argument":
            return f"{command}: give {name}{see}"
        return f"{command}: {name} is required{see}"
    if kind == "BadParameter" and param is not None:
        return f"{name}: {_bad_value(name, str(getattr(exc, 'message', '') or format_message()))}"
    return f"{str(format_message()).rstrip('.')}{see if ctx is not None else ''}"


def _option_names(ctx: Any) -> list[str]:
    command = getattr(ctx, "command", None)
    out: list[str] = []
    for p in getattr(command, "params", []) or []:
        out += [o for o in getattr(p, "opts", []) if o.startswith("--")]
    return out


def _subcommands(ctx: Any) -> list[str]:
    command = getattr(ctx, "command", None)
    lister = getattr(command, "list_commands", None)
    return list(lister(ctx)) if callable(lister) else []


def _param_name(param: Any) -> str:
    opts = [o for o in getattr(param, "opts", []) if o.startswith("--")]
    if opts and getattr(param, "param_type_name", "") == "option":
        return str(opts[0])
    metavar = getattr(param, "metavar", None)
    return str(metavar or getattr(param, "name", "") or "a value").upper()


def _bad_value(option: str, message: str) -> str:
    """``'abc' is not a valid float range.`` -> ``'abc' is not a number of seconds, e.g. 10``."""
    m = re.match(r"'?(.*?)'? is not a valid (?:float|integer|int)(?: range)?\.?$", message)
    if m:
        return f"{m.group(1)!r} is not {_UNITS.get(option, 'a number')}"
    m = re.match(r"'?(.*?)'? is not in the range (.*?)\.?$", message)
    if m:
        return f"{m.group(1)} is out of range ({_range_words(m.group(2))})"
    m = re.match(r"'(.*?)' is not one of (.*?)\.?$", message)
    if m:
        choices = ", ".join(c.strip(" '") for c in m.group(2).split(","))
        return f"{m.group(1)!r} is not one of {choices}"
    return message.rstrip(".")


def _range_words(text: str) -> str:
    """click's ``x>=1`` / ``0<=x<=65535`` as words."""
    low = re.search(r"(-?[\d.]+)<=?x", text) or re.search(r"x>=?(-?[\d.]+)", text)
    high = re.search(r"x<=?(-?[\d.]+)", text) or re.search(r"(-?[\d.]+)>=?x", text)
    if low and high:
        return f"from {low.group(1)} to {high.group(1)}"
    if low:
        return f"at least {low.group(1)}"
    if high:
        return f"at most {high.group(1)}"
    return text


#: set by the command line when ``scan --endpoint HOST:PORT`` exists: the hint for a host:port
ENDPOINT_HINT: list[str] = []


def domain_problem(text: str, option: str | None) -> str | None:
    """A domain that is clearly something else (a URL, host:port, an address): what to give."""
    where = f"{option} {text!r}" if option else repr(text)
    if "://" in text:
        host = text.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1].split(":", 1)[0]
        example = f" (e.g. {host})" if host else ""
        return f"{where}: give a domain, not a URL{example}"
    if text.count(":") == 1 and text.rsplit(":", 1)[1].isdigit():
        host = text.rsplit(":", 1)[0]
        hint = f" ({ENDPOINT_HINT[0]})" if ENDPOINT_HINT else ""
        return f"{where}: give the domain alone ({host}); ports come from its SRV records{hint}"
    return None


def resolve_nameserver(text: str) -> str:
    """``--nameserver dns.example.net[:PORT]``: a host name becomes its first address (asked of
    the system's resolver, once); an IP address, with or without a port, is left as it is."""
    host, sep, port = text.rpartition(":") if text.count(":") == 1 else (text, "", "")
    if not sep:
        host = text
    if not host or host.startswith("[") or re.fullmatch(r"[\d.]+", host) or ":" in host:
        return text
    if not re.fullmatch(r"[A-Za-z0-9.-]+", host):
        return text
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
    except (OSError, UnicodeError):
        raise ValueError(f"--nameserver {text!r}: cannot resolve the host name {host}") from None
    address = str(infos[0][4][0])
    if ":" in address:
        return f"[{address}]:{port}" if sep else address
    return f"{address}:{port}" if sep else address
