"""Reading parsed TOML with types and key paths: the validation primitives of the config.

Theory of this module
---------------------
* A config file is read by cron, unattended, for years: a wrong value must fail at load time
  with the key path a user finds in the file (``partner[2].suppress[0].until``, 0-based like
  the ``[[partner]]`` blocks in order) and the value it got, quoted as TOML writes it.
* :class:`Table` wraps one TOML table and its path; it has one getter per expected type, each
  raising :class:`ConfigError` (one line: ``FILE: key.path: problem``). ``only`` makes unknown
  keys errors: a typo never silently scans less.
* Domain names are normalised exactly as the command line normalises them (A-labels), so a
  partner written as ``Contoso.COM.`` is the same domain as ``contoso.com`` in history and
  metrics.
* Which keys exist and what they mean is :mod:`scanner.config`'s business, not this module's.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from scanner.names import InvalidName, normalize_domain


class ConfigError(ValueError):
    """An invalid config file; the message is one line: ``FILE: key.path: problem``."""


class Table:
    """One TOML table and its key path; typed getters that fail with the path and the value."""

    def __init__(self, data: Mapping[str, Any], path: str, source: str) -> None:
        self.data = data
        self.path = path
        self.source = source

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def fail(self, name: str, problem: str) -> NoReturn:
        raise ConfigError(f"{self.source}: {self.key(name)}: {problem}")

    def expected(self, name: str, what: str, value: Any) -> NoReturn:
        self.fail(name, f"expected {what}, got {_show(value)}")

    def only(self, *names: str) -> None:
        for k in self.data:
            if k not in names:
                self.fail(k, f"unknown key (expected one of: {', '.join(names)})")

    def table(self, name: str) -> Table:
        value = self.data.get(name, {})
        if not isinstance(value, dict):
            self.expected(name, "a table", value)
        return Table(value, self.key(name), self.source)

    def tables(self, name: str) -> list[Table]:
        value = self.data.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.expected(name, f"an array of tables ([[{self.key(name)}]])", value)
        return [Table(v, f"{self.key(name)}[{i}]", self.source) for i, v in enumerate(value)]

    def string(self, name: str, *, required: bool = False) -> str | None:
        if name not in self.data:
            if required:
                self.fail(name, "required key is missing")
            return None
        value = self.data[name]
        if not isinstance(value, str):
            self.expected(name, "a string", value)
        return str(value)

    def strings(self, name: str, default: Sequence[str] | None) -> tuple[str, ...] | None:
        if name not in self.data:
            return None if default is None else tuple(default)
        value = self.data[name]
        if not isinstance(value, list):
            self.expected(name, "an array of strings", value)
        for i, v in enumerate(value):
            if not isinstance(v, str):
                self.expected(f"{name}[{i}]", "a string", v)
        return tuple(value)

    def domain(self, name: str, *, required: bool = False) -> str | None:
        text = self.string(name, required=required)
        return None if text is None else self._domain(name, text)

    def domains(self, name: str) -> tuple[str, ...]:
        values = self.strings(name, ()) or ()
        return tuple(dict.fromkeys(self._domain(f"{name}[{i}]", v) for i, v in enumerate(values)))

    def hostname(self, name: str) -> str | None:
        return self.domain(name)

    def hostnames(self, name: str) -> tuple[str, ...]:
        return self.domains(name)

    def _domain(self, name: str, text: str) -> str:
        try:
            return normalize_domain(text)
        except (ValueError, InvalidName) as exc:
            self.fail(name, str(exc))

    def choice(self, name: str, choices: Sequence[str], default: str) -> str:
        value = self.string(name)
        if value is None:
            return default
        if value not in choices:
            self.expected(name, " or ".join(json.dumps(c) for c in choices), value)
        return value

    def integer(self, name: str, default: int, *, minimum: int) -> int:
        value = self.data.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            self.expected(name, "an integer", value)
        if value < minimum:
            self.fail(name, f"must be at least {minimum}, got {value}")
        return int(value)

    def number(self, name: str, default: float, *, minimum: float) -> float:
        value = self.data.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.expected(name, "a number", value)
        if not math.isfinite(value):  # nan and inf compare false with everything
            self.expected(name, "a finite number", value)
        if value < minimum:
            self.fail(name, f"must be at least {minimum}, got {value}")
        return float(value)

    def date(self, name: str) -> dt.date | None:
        """A TOML local date (``until = 2030-06-30``) or the same as a string."""
        if name not in self.data:
            return None
        value = self.data[name]
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return dt.date.fromisoformat(value)
        return self.expected(name, "a date (YYYY-MM-DD)", value)


def _show(value: Any) -> str:
    """How a wrong value is quoted in an error: strings as written in TOML, others by kind."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return type(value).__name__
