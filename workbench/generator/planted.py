"""The experiments the generator plants, with their TRUE effects: the one place they are declared.

Each variation's effect multiplies one behaviour's probability, ``p × (1 + effect)``, for a user
from their first exposure on (the simulation's base rates leave room, so no probability is capped). The same table is written to the database as
``generator_truth`` so an analysis can be checked against what really happened.
"""

from __future__ import annotations

from dataclasses import dataclass

# Where an exposure is logged: the page (or moment) that renders the experiment.
EXPOSURE_PLACES = ("home", "search", "item", "checkout", "first_session_end")
# The behaviour an effect multiplies, described as the probability it scales.
BEHAVIOURS = {
    "add_to_cart": "probability of adding each viewed item to the cart",
    "purchase": "probability of buying once at checkout",
    "return_visit": "probability of each return visit",
}
# An effect can only act on behaviour that happens after its exposure.
BEHAVIOURS_AFTER = {
    "home": ("add_to_cart", "purchase"),
    "search": ("add_to_cart", "purchase"),
    "item": ("add_to_cart", "purchase"),
    "checkout": ("purchase",),
    "first_session_end": ("return_visit",),
}


@dataclass(frozen=True)
class PlantedExperiment:
    """One planted experiment: variation ``i`` has weight ``weights[i]`` and effect ``effects[i]``.

    Exposures happen in sessions starting within ``[starts, ends)``, as fractions of the period,
    and, when ``browser`` is set, only in sessions on that browser. ``extra_exposure_share`` is the
    share of exposed users who, by a planted bug, also get one exposure to variation 0 at their
    first exposure (only users of other variations, so dropping them skews the split).
    """

    key: str
    weights: tuple[float, ...]
    exposed_on: str
    acts_on: str | None
    effects: tuple[float, ...]
    notes: str
    starts: float = 0.0
    ends: float = 1.0
    browser: str | None = None
    extra_exposure_share: float = 0.0

    def __post_init__(self) -> None:
        where = f"planted experiment {self.key!r}"
        if len(self.weights) < 2 or abs(sum(self.weights) - 1) > 1e-9 or min(self.weights) <= 0:
            raise ValueError(f"{where}: weights must be two or more positive shares summing to 1.")
        if len(self.effects) != len(self.weights) or self.effects[0] != 0:
            raise ValueError(f"{where}: give one effect per variation, 0 for the control (variation 0).")
        if self.exposed_on not in EXPOSURE_PLACES:
            raise ValueError(f"{where}: exposed_on must be one of {EXPOSURE_PLACES}.")
        if self.acts_on is None and any(self.effects):
            raise ValueError(f"{where}: effects need acts_on naming the behaviour they change.")
        if self.acts_on is not None and self.acts_on not in BEHAVIOURS_AFTER[self.exposed_on]:
            raise ValueError(
                f"{where}: an exposure on {self.exposed_on} can only act on {BEHAVIOURS_AFTER[self.exposed_on]}."
            )
        if not 0 <= self.starts < self.ends <= 1:
            raise ValueError(f"{where}: starts and ends are fractions of the period with 0 <= starts < ends <= 1.")
        if not 0 <= self.extra_exposure_share <= 1 - self.weights[0]:
            raise ValueError(f"{where}: extra_exposure_share must be within [0, 1 - weights[0]].")

    @property
    def extra_exposure_probability(self) -> float:
        """Chance that a user of a non-control variation gets the extra variation-0 exposure."""
        return self.extra_exposure_share / (1 - self.weights[0])


# The designs of GrowthBook's sample data (same keys, arms, weights and dates over the default
# 60-day period from 2026-09-25), so that workbench.yml analyses generated data as it does the sample.
PLANTED_EXPERIMENTS: tuple[PlantedExperiment, ...] = (
    PlantedExperiment(
        "homepage-nav-ios",
        (0.5, 0.25, 0.25),
        "home",
        None,
        (0.0, 0.0, 0.0),
        "A/A test with unequal weights (50/25/25), shown to Safari users only: any difference is noise.",
        browser="Safari",
    ),
    PlantedExperiment(
        "add-to-cart-cta",
        (0.5, 0.5),
        "item",
        "add_to_cart",
        (0.0, 0.30),
        "Clear winner: variation 1 adds more items to carts, so more users purchase.",
    ),
    PlantedExperiment(
        "price-display",
        (0.5, 0.5),
        "item",
        "purchase",
        (0.0, -0.25),
        "Loser: variation 1 makes fewer checkouts end in a purchase. Exposures stop on 2026-11-17.",
        ends=53 / 60,
    ),
    PlantedExperiment(
        "results-order",
        (0.5, 0.5),
        "search",
        "add_to_cart",
        (0.0, 0.25),
        "Short test (2026-09-27 to 2026-10-15): variation 1 adds more searched items to carts.",
        starts=2 / 60,
        ends=20.5 / 60,
    ),
    PlantedExperiment(
        "checkout-layout",
        (1 / 3, 1 / 3, 1 / 3),
        "checkout",
        "purchase",
        (0.0, -0.10, 0.10),
        "Three arms: variation 1 loses, variation 2 wins on purchases. Multiple exposures: 9% of exposed "
        "users (all from variations 1 and 2) also see variation 0 once; dropping them as __multiple__ "
        "leaves a sample-ratio mismatch.",
        extra_exposure_share=0.09,
    ),
    PlantedExperiment(
        "confirmation-email",
        (0.5, 0.5),
        "first_session_end",
        "return_visit",
        (0.0, 0.20),
        "Winner on retention: sent at the end of a first session between 2026-11-05 and 2026-11-17; "
        "variation 1 brings users back more often.",
        starts=41 / 60,
        ends=53 / 60,
    ),
)


def truth_table(experiments: tuple[PlantedExperiment, ...] = PLANTED_EXPERIMENTS):
    """One row per planted variation as a :class:`pyarrow.Table`, columns as ``generator_truth``
    in ``sql/generator/schema.sql``."""
    import pyarrow as pa

    rows = [
        {
            "experiment_id": e.key,
            "variation_id": str(v),
            "weight": e.weights[v],
            "exposed_on": e.exposed_on,
            "metric": BEHAVIOURS[e.acts_on] if e.acts_on else "none",
            "true_relative_effect": e.effects[v],
            "notes": e.notes if v else f"Control. {e.notes}",
        }
        for e in experiments
        for v in range(len(e.weights))
    ]
    return pa.Table.from_pylist(rows)
