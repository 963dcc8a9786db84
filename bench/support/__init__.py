"""What the benchmark scripts (``bench/pipeline.py``, ``bench/lifecycle.py``,
``bench/sync_tasks.py``) share.

* ``snapshot``   the copy of the tree that every process of a benchmark runs
* ``errors``     PhaseError: a phase failed
* ``processes``  Proc: a subprocess in its own session, stopped together with its children
* ``cpu``        CPU seconds of processes, Redis, PostgreSQL and the whole machine; waiting
                 for an idle machine
* ``waiting``    polling a condition with a deadline; consumer groups' progress
* ``bench``      Config (the options) and Bench (one benchmark's Redis, PostgreSQL admin,
                 migrated template database, and the clean-up of all it created)
* ``stack``      TaskFlowStack: one namespace + one cloned database for one phase
* ``report``     which machine, servers and code were measured; medians, percentiles

Importing any of them first takes the snapshot (the import below), so every ``taskflow``
import that follows, in this package or in a script, comes from the copy.
"""

from . import snapshot as snapshot
