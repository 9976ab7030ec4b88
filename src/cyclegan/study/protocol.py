"""The real-vs-fake perceptual study (CycleGAN paper, Sec. 5.1.1 / Table 1): pure functions.

Each participant sees pairs of images, one real and one generated, the fake's side drawn at
random, and clicks the one they believe is real. The first `N_PRACTICE` trials give feedback,
the next `N_SCORED` count and give none. The score of an algorithm is the percentage of scored
trials in which the fake was chosen ("fooled"), averaged over participants, with the standard
error of that mean over participants.

Nothing here touches files, the database or the web server, so it is tested directly.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

N_PRACTICE = 10
N_SCORED = 40
N_TRIALS = N_PRACTICE + N_SCORED
# Images may repeat across the 50 trials (a folder of 5 images is drawn 10 times over), but a
# folder of fewer than MIN_IMAGES would make the study a memory test.
MIN_IMAGES = 5
SIDES = ("left", "right")


@dataclass(frozen=True)
class PlannedTrial:
    position: int  # 0-based order within the session
    practice: bool
    real_index: int  # into the sorted list of real images
    fake_index: int  # into the sorted list of this participant's algorithm's images
    fake_side: str  # "left" or "right"


def _draw(rng: random.Random, n_items: int, count: int) -> list[int]:
    """`count` indices into `n_items`, each used once before any is used again (reshuffled rounds)."""
    out: list[int] = []
    while len(out) < count:
        block = list(range(n_items))
        rng.shuffle(block)
        if out and len(block) > 1 and block[0] == out[-1]:
            block[0], block[-1] = block[-1], block[0]  # no image twice in a row across rounds
        out += block
    return out[:count]


def _balanced_sides(rng: random.Random, count: int) -> list[str]:
    """Fake on the left in half of the trials (one extra random side when `count` is odd), order shuffled."""
    sides = ["left", "right"] * (count // 2)
    if count % 2:
        sides.append(rng.choice(SIDES))
    rng.shuffle(sides)
    return sides


def plan_trials(n_real: int, n_fake: int, seed: int,
                n_practice: int = N_PRACTICE, n_scored: int = N_SCORED) -> list[PlannedTrial]:
    """One participant's trials, fully determined by `seed`.

    Real and fake images are drawn independently (the pair is unrelated, as in the paper), each
    folder cycling through all of its images before repeating one. The fake's side is balanced
    within the practice block and within the scored block, in random order.
    """
    if n_real < MIN_IMAGES or n_fake < MIN_IMAGES:
        raise ValueError(f"need at least {MIN_IMAGES} real and {MIN_IMAGES} fake images, got {n_real} and {n_fake}")
    if n_practice < 0 or n_scored < 1:
        raise ValueError("need n_practice >= 0 and n_scored >= 1")
    rng = random.Random(seed)
    total = n_practice + n_scored
    reals = _draw(rng, n_real, total)
    fakes = _draw(rng, n_fake, total)
    sides = _balanced_sides(rng, n_practice) + _balanced_sides(rng, n_scored)
    return [PlannedTrial(i, i < n_practice, reals[i], fakes[i], sides[i]) for i in range(total)]


def fake_chosen(fake_side: str, choice: str) -> bool:
    """Whether clicking `choice` picked the generated image (the participant was fooled)."""
    if fake_side not in SIDES or choice not in SIDES:
        raise ValueError(f"sides must be 'left' or 'right', got {fake_side!r} and {choice!r}")
    return choice == fake_side


def assign_algorithm(algorithms: Sequence[str], counts: Mapping[str, int]) -> str:
    """Round-robin balance: the algorithm with the fewest participants so far, ties to the first listed."""
    if not algorithms:
        raise ValueError("no algorithms to assign")
    return min(algorithms, key=lambda name: (counts.get(name, 0), algorithms.index(name)))


@dataclass(frozen=True)
class AlgorithmResult:
    algorithm: str
    participants: int  # participants who finished every scored trial
    fooled_pct: float | None  # mean over participants of the % of scored trials where the fake was chosen
    stderr_pct: float | None  # sample std (ddof=1) of the per-participant % / sqrt(participants)
    scored_trials: int  # scored answers from those participants

    def as_dict(self) -> dict:
        return {"algorithm": self.algorithm, "participants": self.participants, "fooled_pct": self.fooled_pct,
                "stderr_pct": self.stderr_pct, "scored_trials": self.scored_trials}

    def describe(self) -> str:
        """'26.8% +- 2.8%' as in Table 1 of the paper."""
        if self.fooled_pct is None:
            return "n/a"
        se = "n/a" if self.stderr_pct is None else f"{self.stderr_pct:.1f}%"
        return f"{self.fooled_pct:.1f}% +- {se}"


def mean_and_stderr(rates: Sequence[float]) -> tuple[float | None, float | None]:
    """Mean of per-participant rates and its standard error (sample std / sqrt(n)); None where undefined."""
    n = len(rates)
    if n == 0:
        return None, None
    mean = sum(rates) / n
    if n < 2:
        return mean, None
    var = sum((r - mean) ** 2 for r in rates) / (n - 1)
    return mean, math.sqrt(var) / math.sqrt(n)


def summarize(algorithms: Sequence[str], answers: Iterable[tuple[str, str, bool]],
              finished: Iterable[str]) -> list[AlgorithmResult]:
    """Per-algorithm results from scored answers.

    `answers`: (algorithm, participant_id, fake_chosen) for every scored answer. `finished`: ids of
    participants who completed their session; only they count (an abandoned session would weigh a
    handful of trials as much as a full one). Algorithms without finished participants get None.
    """
    done = set(finished)
    per: dict[str, dict[str, list[bool]]] = {name: {} for name in algorithms}
    for algorithm, participant, chosen in answers:
        if participant in done:
            per.setdefault(algorithm, {}).setdefault(participant, []).append(bool(chosen))
    results = []
    for name, by_participant in per.items():
        rates = [100.0 * sum(v) / len(v) for v in by_participant.values()]
        mean, se = mean_and_stderr(rates)
        results.append(AlgorithmResult(name, len(rates), mean, se, sum(len(v) for v in by_participant.values())))
    return results
