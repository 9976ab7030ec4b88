"""Replay a float64 training trace of the authors' code with our step and compare.

    python scripts/compare_with_authors.py ../shared/golden/default

TRACE_DIR holds losses.json (their train.py arguments and per-step losses), inputs.pt
(the tensors their set_input received) and checkpoints/NAME/ with the weights at step 0
and after the last step. Their options are mapped as `cyclegan import` maps them. Prints
the worst loss and weight differences; exits 0 only when both are within the tolerance.
"""

from __future__ import annotations

import argparse
import sys

from cyclegan.authors_trace import replay


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trace", help="trace directory (losses.json, inputs.pt, checkpoints/NAME/)")
    parser.add_argument("--tolerance", type=float, default=1e-8, help="largest difference accepted")
    args = parser.parse_args()
    try:
        result = replay(args.trace)
    except Exception as err:  # noqa: BLE001 - one line for the command line
        print(f"compare_with_authors: error: {err}", file=sys.stderr)
        return 2
    print(f"{result.steps} steps of {args.trace}")
    print(f"worst loss difference:   {result.worst_loss:.3e}  ({result.worst_loss_at})")
    print(f"worst weight difference: {result.worst_weight:.3e}  ({result.worst_weight_at}, after step {result.steps})")
    ok = result.within(args.tolerance)
    print(f"{'EQUAL' if ok else 'DIFFERENT'} within {args.tolerance:g}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
