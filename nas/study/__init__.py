"""The Optuna side of resnas: where studies live, how they are read and repaired.

``storage`` opens an SQLAlchemy URL or a journal file (``rdb`` makes Optuna's
RDB storage survive server outages and several drivers); ``algorithms`` maps a
space file's sampler and pruner to Optuna objects; ``recovery`` fails and
requeues trials a dead driver left running; ``queries`` reads finished, best
and Pareto trials; ``costs`` says when a two-objective search knows each cost, and
``pareto_pruner`` prunes such a search on its front (Optuna cannot). Every touch of
Optuna's private attributes is in ``_optuna``.
"""
