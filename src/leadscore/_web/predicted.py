"""The predicted probability of conversion on the contact card, when the
service is given a trained predictive model (the `predictive_model` setting:
a directory `leadscore train` wrote).

The contact's events, up to the card's instant, go through the same feature
path as `leadscore predict --events` (`_predict._api.event_features`, with
the rule model the predictive model was trained with, if any), and the
model's factors give the probability and the features raising and lowering
it most. The model is loaded once per process and directory.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from .._events import Event
from .._predict._api import event_features
from .._predict._train import TrainedModel

TOP = 3  # factors shown each way: what a rep reads at a glance


@cache
def _load(directory: Path) -> TrainedModel:
    return TrainedModel.load(directory)


def prediction(
    directory: Path | None, contact_id: str, events: list[Event], *, at: int
) -> dict[str, Any] | None:
    """The contact's probability and top factors (`TrainedModel.factors`);
    None without a model, or when the model cannot score from events (it was
    trained on a table) or the contact has no events it observes."""
    if directory is None:
        return None
    model = _load(directory)
    source = model.meta.get("source", {})
    if source.get("kind") != "events":
        return None
    ids, table = event_features(model, events, at=at)
    if contact_id not in ids:
        return None
    return model.factors(table, top=TOP)[ids.index(contact_id)]
