"""``nas search``: Ray Tune runs the trials; an Optuna study samples, prunes and records them.

``options`` (:func:`prepare`, the one typed entry, and what a search needs; importable
without Ray), ``driver`` (:func:`run`: the study, the Tune run, the report), ``cluster``
(which Ray: a private one or a joined cluster), ``searcher`` (the searcher, scheduler,
stopper and Ctrl-C callback Ray Tune calls), ``trial`` (what runs on a Ray worker),
``progress`` and ``live`` (what a running search shows), ``dashboard`` (the dashboard's
notes and depth figure, off Tune's thread). Ray is imported only inside this package,
and only once a search really starts.
"""

from nas.tuning.options import SearchOptions, SearchOutcome, prepare

__all__ = ["SearchOptions", "SearchOutcome", "prepare"]
