"""Agreement of ``flare_ml.labels`` with the simulator's true course, per site and rule.

Simulates a cohort with confirmation scans at every shipped site, drops its ``outcome``,
adjudicates it with each rule and compares the result with the oracle's noise-free
``true_outcome``. Prints the markdown tables of ``docs/labels.md``. All data synthetic.

    PYTHONPATH=src python benchmarks/label_agreement.py --patients 4000 --seed 1
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from flare_ml.data import contract as c
from flare_ml.labels import PCWG3_DEFAULTS, adjudicate, reason_codes
from flare_ml.simulate import available_sites, simulate_cohort

KEYS = [c.PATIENT_ID, c.ASSESSMENT_DATE]


#: the rules compared: name shown -> (rule, config); ``pcwg3`` is the default (pcwg3/2,
#: the first post-baseline scan counts as inside the flare window), the second row is the
#: same rule with that switched off (pcwg3/1's logic: the window counts days only)
RULES = {
    "pcwg3": ("pcwg3", None),
    "pcwg3, first_scan_in_window: false": (
        "pcwg3",
        PCWG3_DEFAULTS.model_copy(update={"first_scan_in_window": False}),
    ),
    "irecist": ("irecist", None),
}


def compare(cohort, name: str) -> pd.DataFrame:
    """One row per index row: true outcome, label, reason, first index of the patient."""
    rule, config = RULES[name]
    table = adjudicate(cohort.timepoints.drop(columns=c.OUTCOME), rule, config).table
    table = table.dropna(subset=["label_rule"])
    out = table[KEYS].assign(
        label=table[c.OUTCOME].astype("string").fillna("indeterminate").to_numpy(),
        reason=reason_codes(table).to_numpy(),
    )
    out = out.merge(cohort.oracle[[*KEYS, "true_outcome"]], on=KEYS, validate="1:1")
    out["first"] = ~out.duplicated(c.PATIENT_ID)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    began = time.perf_counter()
    rows, confusion, why = [], [], []
    for site in available_sites():
        cohort = simulate_cohort(args.patients, site=site, seed=args.seed, confirmation_scans=True)
        for rule in RULES:
            df = compare(cohort, rule)
            done = df[df.label != "indeterminate"]
            agree = (done.label == done.true_outcome).mean() if len(done) else float("nan")
            first = df[df["first"]]
            fdone = first[first.label != "indeterminate"]
            f_agree = (fdone.label == fdone.true_outcome).mean() if len(fdone) else float("nan")
            rows.append(
                {
                    "site": site,
                    "rule": rule,
                    "index rows": len(df),
                    "labelled": len(done),
                    "agreement (labelled)": f"{agree:.3f}",
                    "indeterminate": f"{1 - len(done) / len(df):.3f}",
                    "agreement, first index rows": f"{f_agree:.3f}",
                    "indeterminate, first index rows": f"{1 - len(fdone) / len(first):.3f}",
                }
            )
            tab = pd.crosstab(df.true_outcome, df.label)
            for truth in tab.index:
                confusion.append(
                    {"site": site, "rule": rule, "true": truth}
                    | {
                        k: int(tab.loc[truth].get(k, 0))
                        for k in ("flare", "progression", "indeterminate")
                    }
                )
            wrong = done[done.label != done.true_outcome]
            for (truth, reason), n in wrong.groupby(["true_outcome", "reason"]).size().items():
                why.append(
                    {"site": site, "rule": rule, "true": truth, "label reason": reason, "n": n}
                )
    print(
        f"cohorts: {args.patients} simulated patients per site, seed {args.seed}, "
        "confirmation_scans=True\n"
    )
    print(pd.DataFrame(rows).to_markdown(index=False))
    print("\nconfusion (rows: true outcome; columns: label)\n")
    print(pd.DataFrame(confusion).to_markdown(index=False))
    print("\ndisagreements by reason\n")
    print(pd.DataFrame(why).to_markdown(index=False))
    print(f"\n{time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
