"""Run every random-drawing test of tests/test_step.py over many fresh draws, in one process.

    python scripts/stress_test_step.py                  # 400 fresh draws of each case, plus the named seeds
    python scripts/stress_test_step.py -n 20 -k compiled --seed 1234

Each case (a test with one set of its parameters) runs first on the seeds named below, which once
failed, then on fresh seeds from secrets, each handed to the test through DCGAN_TEST_SEED, the
variable its failure messages name for a replay (DCGAN_TEST_SEED=S python -m pytest tests/test_step.py).
Prints every failure as it happens and each case's passes, failures and failing seeds every
--report-every rounds and at the end; exits 1 if any draw failed.
"""
import argparse
import gc
import inspect
import itertools
import os
import pathlib
import secrets
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Seeds that failed the comparisons before they were made off the kinks (issue tracker).
NAMED_SEEDS = (204372794, 1069536934, 1285404504, 637339582)


def cases(module):
    """(name, function, parameters) for each test that draws from a seed, for each of its parametrizations."""
    for name, fn in inspect.getmembers(module, inspect.isfunction):
        if not name.startswith("test_") or fn.__module__ != module.__name__:
            continue
        if "draw_seed" not in inspect.getsource(fn) and "random_case" not in inspect.getsource(fn):
            continue
        grids = []
        for mark in getattr(fn, "pytestmark", []):
            if mark.name == "parametrize":
                argnames, values = mark.args[:2]
                argnames = [a.strip() for a in argnames.split(",")] if isinstance(argnames, str) else list(argnames)
                grids.append([dict(zip(argnames, v if len(argnames) > 1 else (v,))) for v in values])
        for combination in itertools.product(*grids):
            params = {k: v for part in combination for k, v in part.items()}
            label = "-".join(f"{k}={v}" for k, v in sorted(params.items()))
            yield f"{name}[{label}]" if label else name, fn, params


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--draws", type=int, default=400, help="fresh draws per case (default 400)")
    parser.add_argument("-k", "--only", default="", help="run only cases whose name contains this")
    parser.add_argument("--seed", type=int, action="append", default=[], help="also run this seed (repeatable)")
    parser.add_argument("--no-named", action="store_true", help="skip the seeds that once failed")
    parser.add_argument("--report-every", type=int, default=10, help="print the counts every N rounds")
    args = parser.parse_args()

    import tests.test_step as module  # after sys.path; imports TensorFlow

    chosen = [case for case in cases(module) if args.only in case[0]]
    results = {name: [0, []] for name, _, _ in chosen}  # passes, [(seed, message)]
    seeds_first = list(args.seed) + ([] if args.no_named else list(NAMED_SEEDS))
    rounds = [(seed,) * len(chosen) for seed in seeds_first]
    rounds += [tuple(secrets.randbits(31) for _ in chosen) for _ in range(args.draws)]
    started = time.time()
    # Round-robin over the cases (each round: every case once, each with its own fresh seed), so an
    # interrupted run has as many draws of every case.
    for r, seeds in enumerate(rounds, 1):
        for (name, fn, params), seed in zip(chosen, seeds):
            os.environ["DCGAN_TEST_SEED"] = str(seed)
            try:
                fn(**params)
                results[name][0] += 1
            except Exception as e:  # an error is a failure too: report it with its seed
                first_line = str(e).splitlines()[0] if str(e) else ""
                results[name][1].append((seed, f"{type(e).__name__}: {first_line}"))
                print(f"FAIL {name} seed {seed}: {results[name][1][-1][1][:300]}", flush=True)
            finally:
                del os.environ["DCGAN_TEST_SEED"]
                gc.collect()
        if r % args.report_every == 0 or r == len(rounds):
            print(f"after {r} of {len(rounds)} rounds ({len(seeds_first)} named seeds first), "
                  f"{time.time() - started:.0f} s:", flush=True)
            for name, (passes, failures) in results.items():
                print(f"  {name}: {passes} passed, {len(failures)} failed"
                      + (f"; failing seeds {[s for s, _ in failures]}" if failures else ""), flush=True)
    total = sum(len(failures) for _, failures in results.values())
    print(f"all: {total} failed draws of {sum(p + len(f) for p, f in results.values())}, "
          f"{time.time() - started:.0f} s", flush=True)
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
