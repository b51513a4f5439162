"""seqexp: fair, fast comparisons of user-behaviour sequence encoders."""

import os

# OpenMP threads that spin while they wait (GNU OpenMP's default) made 2-thread CPU training 4x slower on shared
# cores (benchmarks/results/omp_wait_policy.md). The policy is read once, when torch loads its OpenMP runtime, so
# it is set here, before any seqexp module imports torch; a value the user exported is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

from seqexp import _legacy  # noqa: E402  (after the environment default above; imports nothing heavy)

_legacy.install()  # old module paths (seqexp.encoders.rnn, seqexp.objectives, ...) keep working
