"""Runnable Caspio pipelines: the module behind `caspio-sync` and the examples to copy.

Importing it asks numpy's OpenBLAS for one thread, unless ``OPENBLAS_NUM_THREADS`` is already
set or numpy is already imported: pyarrow imports numpy, whose OpenBLAS otherwise starts a
thread per core that spins on start-up, a tenth of a CPU second of every run
(docs/benchmarks-analysis.md), and a sync does no linear algebra. A notebook that imports this
package before numpy and then multiplies large matrices sets the variable itself.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
