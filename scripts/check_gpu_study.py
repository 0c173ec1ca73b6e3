"""Check the study of scripts/gpu-check.sh's end-to-end search, and print its figures.

    python scripts/check_gpu_study.py STORAGE STUDY TRIALS EPOCHS [--gpu NAME]

Passes (exit 0) when the study holds TRIALS finished trials and none RUNNING or WAITING,
each complete trial has one intermediate value per epoch, the useful-depth attributes
and (with --gpu) a GPU whose name contains NAME; prints trials per hour and images per
second per trial and in total, the figures search_spaces/cifar10.yaml quotes. Otherwise
one line per failed check, exit 1.
"""

from __future__ import annotations

import argparse
import sys

import optuna
from optuna.trial import TrialState

DEPTH = ("useful_layers", "total_layers", "useful_layers_interval", "block_importance")


def train_images(study: optuna.Study) -> int:
    """Images in the training split of the study's space (its stored text)."""
    import yaml

    from nas import data
    from nas.space import parse_space

    text = study.user_attrs["space_text"]
    space = parse_space(yaml.safe_load(text), "space.yaml", text)
    return len(data.load(space.dataset, seed=space.seed, options=space.data).train_x)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("storage")
    parser.add_argument("study")
    parser.add_argument("trials", type=int)
    parser.add_argument("epochs", type=int)
    parser.add_argument("--gpu", help="a part of the GPU's name every trial must record")
    args = parser.parse_args()
    study = optuna.load_study(study_name=args.study, storage=args.storage)
    trials = study.get_trials()
    problems = []
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    stuck = [t.number for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    if len(finished) != args.trials:
        problems.append(f"{len(finished)} finished trials, expected {args.trials}")
    if stuck:
        problems.append(f"trials left running or waiting: {stuck}")
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    for t in complete:
        if sorted(t.intermediate_values) != list(range(1, args.epochs + 1)):
            problems.append(f"trial {t.number}: epochs {sorted(t.intermediate_values)}")
        missing = [key for key in DEPTH if key not in t.user_attrs]
        if missing:
            problems.append(f"trial {t.number}: no {', '.join(missing)}")
        if args.gpu and args.gpu not in str(t.user_attrs.get("gpu")):
            problems.append(f"trial {t.number}: gpu {t.user_attrs.get('gpu')!r}")
    for line in problems:
        print(f"FAIL {line}")
    starts = [t.datetime_start for t in trials if t.datetime_start]
    ends = [t.datetime_complete for t in trials if t.datetime_complete]
    if starts and ends:
        hours = (max(ends) - min(starts)).total_seconds() / 3600
        rates = [t.user_attrs["images_per_second"] for t in complete
                 if "images_per_second" in t.user_attrs]
        seen = train_images(study) * sum(t.user_attrs.get("epochs", 0) for t in finished)
        print(f"{len(finished)} trials in {hours * 3600:.0f} s: {len(finished) / hours:.0f} "
              f"trials/hour; images/s per trial {min(rates, default=0):,.0f}-"
              f"{max(rates, default=0):,.0f} (mean {sum(rates) / max(len(rates), 1):,.0f}); "
              f"{seen / (hours * 3600):,.0f} training images/s in total (all trials' epochs "
              "over the wall time)")
        for t in complete:
            print(f"  trial {t.number}: {t.user_attrs.get('total_layers')} layers, val "
                  f"{t.value:.2%}, {t.user_attrs.get('useful_layers')} useful, "
                  f"{t.user_attrs.get('images_per_second', 0):,.0f} img/s, "
                  f"{t.user_attrs.get('gpu', 'cpu')}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
