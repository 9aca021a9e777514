"""The config file: the shipped example is valid, and every mistake names its key path (exit 3)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from scanner.cli import run
from scanner.config import ConfigError, load_config, parse_config
from scanner.config_model import Suppression

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "fedscan.toml"


def test_shipped_example_is_valid_and_normalised() -> None:
    config = load_config(EXAMPLE)
    dep = config.deployment.deployment
    assert dep.sip_domains == ("contoso.com", "fabrikam.com")
    assert dep.access_edge_fqdn == "sip.contoso.com"
    assert [p.domain for p in config.partners] == ["northwind.com", "tailspintoys.com", "adatum.com"]
    assert config.partners[1].services == ("sip-federation",)
    assert config.partners[1].suppress == (
        Suppression("eku-client-auth-missing", "Tailspin renews with clientAuth in June (ticket INC-4711)",
                    dt.date(2030, 6, 30), "partner[1].suppress[0]"),
    )
    assert config.partners[0].services == ("sip-federation", "xmpp-server", "xmpps-server")
    assert (config.thresholds.warn_days, config.thresholds.crit_days) == (30, 14)


def test_check_config_prints_one_summary_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["check-config", str(EXAMPLE), "--at", "2031-01-01T00:00:00Z"]) == 0
    assert capsys.readouterr().out == (
        f"{EXAMPLE.absolute()}: OK (Edge sip.contoso.com): 2 SIP domains, 2 XMPP domains, 3 partners, "
        "2 suppressions (1 expired as of 2031-01-01)\n"
    )


def test_check_config_error_is_one_line_exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "fedscan.toml"
    path.write_text(
        '[deployment]\nsip_domains = ["contoso.com"]\n'
        '[[partner]]\ndomain = "a.com"\n[[partner]]\ndomain = "b.com"\n'
        '[[partner]]\ndomain = "c.com"\n[[partner.suppress]]\ncode = "expired"\nreason = "x"\n'
        'until = "soon"\n'
    )
    assert run(["check-config", str(path)]) == 3
    assert capsys.readouterr().err == (
        'fedscan: error: fedscan.toml: partner[2].suppress[0].until: expected a date (YYYY-MM-DD), '
        'got "soon"\n'
    )


@pytest.mark.parametrize(("content", "expected"), [
    (None, "fedscan.toml: scan.ca_file: {path}: no such file"),
    (b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
     "CA file {path} holds no usable certificate"),
])
def test_check_config_opens_the_ca_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        content: bytes | None, expected: str) -> None:
    ca = tmp_path / "roots.pem"
    if content is not None:
        ca.write_bytes(content)
    path = tmp_path / "fedscan.toml"
    path.write_text('[deployment]\nsip_domains = ["contoso.com"]\n'
                    '[scan]\nca_file = "roots.pem"\n[[partner]]\ndomain = "a.com"\n')
    assert run(["check-config", str(path)]) == 3
    err = capsys.readouterr().err
    assert err.startswith("fedscan: error: " + expected.format(path=ca))
    assert err.count("\n") == 1


def _err(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(data, "f.toml")
    return str(info.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"deploymnet": {}}, "f.toml: deploymnet: unknown key (expected one of: deployment, partner, "
                             "thresholds, scan, acceptance)"),
        ({"deployment": {"sip_domains": "contoso.com"}},
         'f.toml: deployment.sip_domains: expected an array of strings, got "contoso.com"'),
        ({"deployment": {"sip_domains": ["contoso.com", 7]}},
         "f.toml: deployment.sip_domains[1]: expected a string, got 7"),
        ({"deployment": {"client_auth": "maybe"}},
         'f.toml: deployment.client_auth: expected "required" or "optional", got "maybe"'),
        ({"deployment": {"xmpp_domains": ["contoso.com"]}},
         "f.toml: deployment.sip_domains: give at least one SIP domain, or edge_fqdn"),
        ({"partner": [{"services": ["sip-federation"]}]},
         "f.toml: partner[0].domain: required key is missing"),
        ({"partner": [{"domain": "a.com", "services": ["smtp"]}]},
         'f.toml: partner[0].services[0]: unknown service "smtp" (choose from sip-federation, '
         "xmpp-server, xmpps-server, sip-access)"),
        ({"partner": [{"domain": "a.com", "suppress": [{"code": "expird", "reason": "r"}]}]},
         'f.toml: partner[0].suppress[0].code: unknown finding code "expird" (see `fedscan codes`)'),
        ({"partner": [{"domain": "a.com", "suppress": [{"code": "expired"}]}]},
         "f.toml: partner[0].suppress[0].reason: required key is missing"),
        ({"partner": [{"domain": "a.com", "suppress": [{"code": "expired", "reason": "r",
                                                        "until": dt.datetime(2030, 1, 1)}]}]},
         "f.toml: partner[0].suppress[0].until: expected a date (YYYY-MM-DD), got 2030-01-01T00:00:00"),
        ({"partner": [{"domain": "A.com."}, {"domain": "a.com"}]},
         "f.toml: partner[1].domain: a.com is already listed in partner[0]"),
        ({"deployment": {"sip_domains": ["a.com"]}, "partner": [{"domain": "a.com"}]},
         "f.toml: partner[0].domain: a.com is already listed in [deployment]"),
        ({"partner": {"domain": "a.com"}}, "f.toml: partner: expected an array of tables ([[partner]]), "
                                           "got a table"),
        ({"thresholds": {"warn_days": 10, "crit_days": 20}},
         "f.toml: thresholds.crit_days: must not exceed warn_days (20 > 10)"),
        ({"thresholds": {"warn_days": True}}, "f.toml: thresholds.warn_days: expected an integer, got true"),
        ({"scan": {"timeout": "10"}}, 'f.toml: scan.timeout: expected a number, got "10"'),
        ({"scan": {"concurrency": 0}}, "f.toml: scan.concurrency: must be at least 1, got 0"),
        ({"scan": {"nameservers": ["dns..example"]}},
         "f.toml: scan.nameservers[0]: invalid name server 'dns..example': "
         "'dns..example' is neither an IP address nor a host name"),
        ({"scan": {"nameservers": ["dns.example:0"]}},
         "f.toml: scan.nameservers[0]: invalid name server 'dns.example:0': port must be 1-65535"),
        ({"scan": {"at": "2030-01-01"}}, "f.toml: scan.at: unknown key (expected one of: timeout, "
                                         "concurrency, nameservers, ca_file, "
             "connections, per_address, dnssec_resolver)"),
        ({"scan": {"dnssec_resolver": "unbound.lan"}},
         "f.toml: scan.dnssec_resolver: invalid name server 'unbound.lan': "
         "'unbound.lan' is not an IP address"),
    ],
)
def test_every_error_names_its_key_path(data: dict[str, Any], message: str) -> None:
    assert _err(data) == message


def test_invalid_toml_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[deployment\n")
    with pytest.raises(ConfigError, match=r"^bad\.toml: invalid TOML: "):
        load_config(path)


def test_until_accepts_toml_dates_and_strings_and_lapses_the_next_day(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[[partner]]\ndomain = "a.com"\n'
        '[[partner.suppress]]\ncode = "expired"\nreason = "known"\nuntil = 2030-01-01\n'
        '[[partner.suppress]]\ncode = "san-missing"\nreason = "known"\nuntil = "2030-01-02"\n'
    )
    first, second = load_config(path).partners[0].suppress
    assert (first.until, second.until) == (dt.date(2030, 1, 1), dt.date(2030, 1, 2))
    assert first.expired(dt.date(2030, 1, 1)) is False  # until is the last day it holds
    assert first.expired(dt.date(2030, 1, 2)) is True


def test_relative_ca_file_is_relative_to_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    (tmp_path / "roots.pem").write_text("(checked when a run loads it)")
    path.write_text(
        '[[partner]]\ndomain = "fabrikam.test"\n'
        '[scan]\nca_file = "roots.pem"\nnameservers = ["127.0.0.1:5353"]\n'
    )
    config = load_config(path)
    assert config.scan.ca_file == tmp_path.resolve() / "roots.pem"
    assert config.scan.nameservers == ("127.0.0.1:5353",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[partner]]\ndomain = "f.test"\n[scan]\ntimeout = nan\n',
         "c.toml: scan.timeout: expected a finite number"),
        ('[[partner]]\ndomain = "f.test"\n[scan]\ntimeout = inf\n',
         "c.toml: scan.timeout: expected a finite number"),
        ('[[partner]]\ndomain = "f.test"\n[scan]\nca_file = "missing.pem"\n',
         "c.toml: scan.ca_file: "),
        ("[thresholds]\nwarn_days = 30\n", "c.toml: nothing to monitor"),
    ],
)
def test_what_a_run_would_trip_over_is_a_config_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(message)


def test_a_name_server_may_be_a_host_name_resolved_when_the_run_starts(tmp_path: Path) -> None:
    """As --nameserver: the config keeps the text, the run resolves it (here, localhost)."""
    from scanner.cli_common import nameservers

    path = tmp_path / "c.toml"
    path.write_text('[[partner]]\ndomain = "fabrikam.test"\n[scan]\nnameservers = ["localhost:5353"]\n')
    config = load_config(path)
    assert config.scan.nameservers == ("localhost:5353",)
    resolved = nameservers(list(config.scan.nameservers))
    assert resolved is not None and resolved[0][1] == 5353
    assert resolved[0][0] in ("127.0.0.1", "::1")
