"""The predicted probability on the contact card: a server given a trained
predictive model (the `predictive_model` setting) shows, for a contact, what
`leadscore predict --events` gives it over the whole log (the same feature
path, from the contact's own events); a server without one shows none."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from leadscore._predict._api import event_features, train_events
from leadscore._predict._history import Setup
from leadscore._predict._train import Options
from leadscore._settings import Settings
from leadscore._store import create_workspace, ingest, store_model
from leadscore._store.database import now, open_database
from leadscore._store.migrate import upgrade
from leadscore._store.users import Role, create_user

from ._browser import MODEL, PASSWORD
from ._live import serving, web_sign_in
from .test_predict import make_events


def test_the_card_shows_the_predicted_probability_and_its_factors(tmp_path: Path) -> None:
    events = make_events(400)
    trained = train_events(
        events, setup=Setup("deal_won", 7.0), options=Options(rounds=40, threads=1)
    )
    trained.save(tmp_path / "model")
    # What `leadscore predict --events` says of each contact: the whole log at once.
    ids, table = event_features(trained, events, at=now())
    expected = dict(zip(ids, trained.factors(table, top=3), strict=True))
    contact = max(expected, key=lambda c: expected[c]["probability"])
    assert expected[contact]["raising"]  # something to show

    url = f"sqlite:///{tmp_path / 'web.db'}"
    upgrade(url)
    database = open_database(url)
    try:
        with database.connect() as conn:
            create_workspace(conn, workspace="acme")
            model = store_model(conn, workspace="acme", document=MODEL, activate=True)
            ingest(conn, workspace="acme", model=model, events=events)
            create_user(conn, workspace="acme", email="rep@acme.test", role=Role.SALES,
                        password=PASSWORD)  # fmt: skip
    finally:
        database.dispose()
    for given in (tmp_path / "model", None):
        settings = Settings(database_url=url, outbox_worker=False, predictive_model=given)
        with serving(settings) as base, httpx.Client(base_url=base, trust_env=False) as http:
            assert web_sign_in(http, "rep@acme.test", PASSWORD).status_code == 303
            card = http.get(f"/contacts/{contact}")
        assert card.status_code == 200, card.text
        shown = re.search(r'<dd id="predicted">(\d+)%</dd>', card.text)
        if given is None:
            assert shown is None
            assert "Why this prediction" not in card.text
            continue
        assert shown, card.text
        assert int(shown.group(1)) == round(expected[contact]["probability"] * 100)
        raising = re.search(r'<ul class="factors" id="raising">(.*?)</ul>', card.text, re.S)
        assert raising
        for factor in expected[contact]["raising"]:
            assert f"{factor['effect']:+.2f}</strong> {factor['feature']} " in raising.group(1)
