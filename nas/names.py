"""The vocabularies and defaults every layer shares, with no heavy imports.

The space reader, the command line, the models and the data loaders all name
blocks, shortcuts, datasets, samplers and pruners; each list lives here once,
so a new name is added in one place and the CLI can check a flag without
importing torch, Optuna or Ray.
"""

from __future__ import annotations

import re

# --- architecture and training (a Candidate's fields) -------------------------------------
BLOCK_TYPES = ("basic", "bottleneck", "preact", "highway")
SHORTCUT_TYPES = ("identity", "projection", "conv", "scaled", "rezero", "none")
OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("onecycle", "cosine", "constant")

# --- data -----------------------------------------------------------------------------------
DATASETS = ("digits", "synthetic", "mnist", "fashion-mnist", "cifar10", "cifar100",
            "imagefolder")

# --- search ---------------------------------------------------------------------------------
METRICS = ("val_accuracy",)
# What a search may optimise: accuracy up, and optionally one cost down (nas.study.costs:
# params and macs are known before training, latency is timed on the trial's device as it
# starts, useful_layers only after the lesion analysis).
SECOND_OBJECTIVES = ("useful_layers", "params", "macs", "latency")
SAMPLERS = ("tpe", "random", "grid", "gp", "nsga2")
PRUNERS = ("none", "median", "percentile", "successive-halving", "hyperband", "threshold",
           "patient", "pareto")
# The pruner that ranks trials on two objectives (nas.study.pareto_pruner); Optuna's prune
# on one objective only.
MULTI_OBJECTIVE_PRUNERS = ("none", "pareto")
# A study's name: it names a folder under results/, so no '/', no '..', no leading '-'.
STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
STUDY_NAME_ALLOWED = "letters, digits, '.', '_', '-'"
# What `nas search --progress` can show (nas.tuning.progress, nas.tuning.live).
PROGRESS_CHOICES = ("auto", "live", "lines", "json", "quiet")

# --- defaults -------------------------------------------------------------------------------
DEFAULT_RESULTS = "results"
DEFAULT_STORAGE = "sqlite:///results/nas.db"
DEFAULT_SPACE = "search_spaces/resnet-digits.yaml"
