"""The public API is exactly `leadscore.__all__`, and the rest stays private."""

from __future__ import annotations

import pkgutil

import leadscore


def test_all_names_exist() -> None:
    for name in leadscore.__all__:
        assert hasattr(leadscore, name), name


def test_every_public_attribute_is_in_all() -> None:
    public = {name for name in vars(leadscore) if not name.startswith("_")}
    # Submodules appear as attributes once imported; they are private by name.
    assert public - {"annotations"} <= set(leadscore.__all__)


def test_all_is_unique() -> None:
    assert len(leadscore.__all__) == len(set(leadscore.__all__))


def test_implementation_modules_are_private() -> None:
    names = [module.name for module in pkgutil.iter_modules(leadscore.__path__)]
    assert names, "no modules found"
    assert all(name.startswith("_") for name in names), names


def test_exceptions_share_one_base() -> None:
    for error in (leadscore.ModelError, leadscore.EventError, leadscore.InputError):
        assert issubclass(error, leadscore.LeadscoreError)
