"""The embedded loopback lab: a DNS responder and federation listeners on 127.0.0.0/8."""
