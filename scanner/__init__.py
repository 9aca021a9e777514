"""fedscan: does your SIP/XMPP federation endpoint present a certificate federation accepts?

The package is laid out by stage, each testable alone:
  discovery (DNS)  ->  connect/negotiate (trio + sans-I/O XMPP)  ->  handshake (chain captured)
  ->  verify (pure)  ->  report (table / JSON / metrics).
"""

__version__ = "0.1.0"
