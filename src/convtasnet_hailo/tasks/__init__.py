"""Where cases run: one interface (``base.CaseExecutor``) for local threads and processes and for a Ray cluster.

Grids, ``compile`` and ``evaluate`` turn their work into :class:`~.base.Task` objects, hand them
to an executor and read the results back the same way, whatever runs them:
cases -> executor -> results (TSV / CSV / JSON) -> report.
"""
