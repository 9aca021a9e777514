"""``make bench``: fedscan against the bare-handshake floor and sslyze, on a loopback lab of N endpoints.

Stages, one module each: :mod:`bench.lab` (the lab, in its own process), :mod:`bench.floor`
(the minimal trio + ssl handshaker), :mod:`bench.sslyze_runner` (sslyze's CLI, certinfo only),
:mod:`bench.measure` (a child process's wall time, CPU and peak RSS), :mod:`bench.stages`
(fedscan's CPU stage by stage, in one process), :mod:`bench.report` (the figures and their
rendering) and :mod:`bench.__main__` (the run).
"""
