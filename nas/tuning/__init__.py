"""``nas search``: Ray Tune runs the trials; an Optuna study samples, prunes and records them.

``options`` (what a search needs; importable without Ray), ``cluster`` (which
Ray: a private one or a joined cluster), ``driver`` (the study, the Tune run),
``tune`` (the searcher, scheduler and stopper Ray Tune calls), ``trial`` (what
runs on a Ray worker). Ray is imported only inside this package, and only once
a search really starts.
"""

from nas.tuning.options import SearchOptions, SearchOutcome

__all__ = ["SearchOptions", "SearchOutcome"]
