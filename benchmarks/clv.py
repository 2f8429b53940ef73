"""BG/NBD and Gamma-Gamma fits: linkbay_customers_clv beside lifetimes, on CDNOW and
on simulated customers.

Run by hand (not part of the test suite):

    python benchmarks/clv.py                        # CDNOW and 1,000,000 simulated customers
    python benchmarks/clv.py --customers 100000     # a quicker run

lifetimes is compared in the same run when it can be imported (it is not a dependency
of the project: `pip install lifetimes`, which brings pandas, autograd and dill);
otherwise ours is timed alone and the reason is printed. Each library's ``fit`` is
timed as a user calls it, the best of ``--repeat`` runs (lifetimes' fit also computes
its standard errors; ours checks the curvature at the optimum). Prints a table and
writes ``benchmarks/results/clv.json``.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from _harness import report

from linkbay_customers_clv import BetaGeoModel, GammaGammaModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# The CDNOW summary, from the sample vendored for the tests.
from tests.unit.test_clv_models import cdnow

TARGETS = {
    "cdnow_bg_speedup": (">=", 1.0),
    "cdnow_gg_speedup": (">=", 1.0),
    "simulated_bg_speedup": (">=", 1.0),
    "simulated_gg_speedup": (">=", 1.0),
    "parameters_differing_at_3_decimals": ("<=", 0),
}

# Customers are simulated from the published CDNOW estimates, with ages over 78 weeks.
SIMULATION_BG = BetaGeoModel(r=0.243, alpha=4.414, a=0.793, b=2.426)
SIMULATION_GG = GammaGammaModel(p=6.25, q=3.74, gamma=15.44)

Data = dict[str, np.ndarray[Any, np.dtype[np.float64]]]
Fit = Callable[[Data], dict[str, float]]


def _lifetimes() -> tuple[Any, str]:
    """lifetimes' fitters, or None and why they cannot be used here."""
    try:
        from lifetimes import BetaGeoFitter, GammaGammaFitter
    except Exception as exc:  # any failure to import means: benchmark ours alone
        return None, f"lifetimes cannot be imported: {type(exc).__name__}: {exc}"
    return (BetaGeoFitter, GammaGammaFitter), f"lifetimes {metadata.version('lifetimes')}"


def _ours_bg(data: Data) -> dict[str, float]:
    model = BetaGeoModel.fit(data["frequency"], data["recency"], data["T"])
    return {"r": model.r, "alpha": model.alpha, "a": model.a, "b": model.b}


def _ours_gg(data: Data) -> dict[str, float]:
    repeat = data["frequency"] > 0
    model = GammaGammaModel.fit(data["frequency"][repeat], data["monetary_value"][repeat])
    return {"p": model.p, "q": model.q, "gamma": model.gamma}


def _their_bg(fitter: Any) -> Fit:
    def fit(data: Data) -> dict[str, float]:
        model = fitter().fit(data["frequency"], data["recency"], data["T"])
        return {name: float(model.params_[name]) for name in ("r", "alpha", "a", "b")}

    return fit


def _their_gg(fitter: Any) -> Fit:
    def fit(data: Data) -> dict[str, float]:
        repeat = data["frequency"] > 0
        model = fitter().fit(data["frequency"][repeat], data["monetary_value"][repeat])
        params = model.params_
        return {"p": float(params["p"]), "q": float(params["q"]), "gamma": float(params["v"])}

    return fit


def _timed(fit: Fit, data: Data, repeat: int) -> tuple[float, dict[str, float]]:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        params = fit(data)
        best = min(best, time.perf_counter() - started)
    return best, params


def _simulated(customers: int, seed: int) -> Data:
    rng = np.random.default_rng(seed)
    T = rng.uniform(1, 78, size=customers)
    frequency, recency = SIMULATION_BG.sample(T, rng)
    spend = SIMULATION_GG.sample(frequency, rng)
    return {"frequency": frequency, "recency": recency, "T": T, "monetary_value": spend}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5, help="runs per CDNOW fit (best kept)")
    parser.add_argument("--simulated-repeat", type=int, default=1)
    parser.add_argument("--seed", type=int, default=2005)
    args = parser.parse_args()

    fitters, lifetimes_status = _lifetimes()
    print(lifetimes_status)
    summary = cdnow()
    datasets = {
        "cdnow": (
            {
                "frequency": summary.frequency,
                "recency": summary.recency,
                "T": summary.T,
                "monetary_value": summary.monetary_value,
            },
            args.repeat,
        ),
        "simulated": (_simulated(args.customers, args.seed), args.simulated_repeat),
    }
    libraries: dict[str, dict[str, Fit]] = {"ours": {"bg": _ours_bg, "gg": _ours_gg}}
    if fitters is not None:
        libraries["lifetimes"] = {"bg": _their_bg(fitters[0]), "gg": _their_gg(fitters[1])}

    results: dict[str, Any] = {
        "simulated_customers": args.customers,
        "lifetimes": lifetimes_status,
        "versions": {
            name: metadata.version(name)
            for name in ("numpy", "scipy", "pandas", "autograd")
            if _installed(name)
        },
        "python": platform.python_version(),
    }
    parameters: dict[str, Any] = {}
    print(f"\n{'data':10s} {'model':7s} {'library':10s} {'fit s':>8s}  parameters")
    for dataset, (data, repeat) in datasets.items():
        for model in ("bg", "gg"):
            fitted: dict[str, dict[str, float]] = {}
            for library, fits in libraries.items():
                seconds, params = _timed(fits[model], data, repeat)
                fitted[library] = params
                results[f"{dataset}_{model}_fit_s_{library}"] = round(seconds, 4)
                shown = ", ".join(f"{k}={v:.3f}" for k, v in params.items())
                print(f"{dataset:10s} {model:7s} {library:10s} {seconds:8.3f}  {shown}")
            parameters[f"{dataset}_{model}"] = {
                library: {k: round(v, 6) for k, v in params.items()}
                for library, params in fitted.items()
            }
            if "lifetimes" in fitted:
                results[f"{dataset}_{model}_speedup"] = round(
                    results[f"{dataset}_{model}_fit_s_lifetimes"]
                    / results[f"{dataset}_{model}_fit_s_ours"],
                    2,
                )
    results["parameters"] = parameters
    if "lifetimes" in libraries:
        results["parameters_differing_at_3_decimals"] = sum(
            round(fits["ours"][name], 3) != round(fits["lifetimes"][name], 3)
            for fits in parameters.values()
            for name in fits["ours"]
        )
    targets = TARGETS if "lifetimes" in libraries else {}
    title = (
        f"BG/NBD + Gamma-Gamma fits, CDNOW (2,357 customers) and {args.customers:,} "
        f"simulated customers; {lifetimes_status}"
    )
    report("clv", title, targets, results)


def _installed(name: str) -> bool:
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True


if __name__ == "__main__":
    main()
