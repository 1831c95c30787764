"""The model editor's comparison of a draft with the active model
(`_predict._backtest.compare`): the batch engine's scorecards of the draft
against the current model's, counted and measured as the pure engine's
replays of the same log say, from a list of events or a JSON Lines file,
and an empty log.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from leadscore import parse_model, replay
from leadscore._predict._backtest import compare
from leadscore._store.database import now

from ._browser import MODEL, history

DRAFT = MODEL.replace("points: 5\n", "points: 25\n")


def test_the_comparison_is_that_of_two_replays(tmp_path: Path) -> None:
    events = history(60)
    at = now()
    old = {c.contact_id: c for c in replay(parse_model(MODEL), events, at).scorecards}
    new = {c.contact_id: c for c in replay(parse_model(DRAFT), events, at).scorecards}
    buyers = {e.contact_id for e in events if e.type == "purchase" and e.contact_id}
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e.to_json()) + "\n" for e in events))
    for source in (events, str(path)):
        found = compare(old.values(), parse_model(DRAFT), source, at=at, converted=buyers)
        assert found.after == sorted(new.values(), key=lambda c: c.contact_id or "")
        assert found.contacts == len(new)
        moved = Counter((old[k].band, card.band) for k, card in new.items())
        assert found.band_changes == sum(n for (a, b), n in moved.items() if a != b) > 0
        assert {(a, b): n for a, b, n in found.moves} == {
            (a, b): n for (a, b), n in moved.items() if a != b
        }
        assert found.stage_changes == sum(old[k].stage != c.stage for k, c in new.items())
        largest = sorted(new, key=lambda k: (-abs(new[k].score - old[k].score), k))[:10]
        assert [cid for cid, _, _ in found.risers] == [
            k for k in largest if new[k].score != old[k].score
        ]
        for report, cards in ((found.current, old), (found.candidate, new)):
            ids = sorted(k for k in cards if k is not None)
            y = np.array([k in buyers for k in ids])
            assert report["leads"] == len(ids)
            assert report["conversions"] == len(buyers) > 0
            expected = roc_auc_score(y, [cards[k].score + cards[k].fit for k in ids])
            assert report["roc_auc"] == round(expected, 4)
            for band, count in Counter(cards[k].band for k in ids).items():
                won = sum(cards[k].band == band and k in buyers for k in ids)
                assert report["by_band"][band]["leads"] == count
                assert report["by_band"][band]["conversions"] == won
        assert found.candidate["roc_auc"] != found.current["roc_auc"]


def test_a_first_model_is_compared_with_itself_and_an_empty_log_counts_nothing() -> None:
    events = history(12)
    at = now()
    found = compare(None, parse_model(DRAFT), events, at=at, converted=set())
    assert found.before == found.after
    assert found.band_changes == found.stage_changes == 0
    assert found.moves == []
    assert found.risers == []
    assert found.current == found.candidate
    assert found.current["roc_auc"] is None  # no conversions: nothing to rank
    empty = compare(None, parse_model(DRAFT), [], at=at, converted=set())
    assert empty.contacts == 0
    assert empty.current["leads"] == 0
