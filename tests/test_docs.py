"""The documentation keeps up with the code: every command and option is in docs/cli.md."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from leadscore._cli import cli
from leadscore._settings import Settings

DOCS = Path(__file__).parents[1] / "docs"


def _commands(group: click.Group, prefix: str = "") -> dict[str, click.Command]:
    """Every command that runs something, by its full name ("db upgrade")."""
    found: dict[str, click.Command] = {}
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found |= _commands(command, f"{prefix}{name} ")
        else:
            found[prefix + name] = command
    return found


COMMANDS = _commands(cli)
NAMES = sorted(COMMANDS)


def test_every_command_has_a_section() -> None:
    text = (DOCS / "cli.md").read_text()
    for name in NAMES:
        assert f"## `leadscore {name}" in text, f"docs/cli.md has no section for {name}"


@pytest.mark.parametrize("name", NAMES)
def test_every_option_is_documented(name: str) -> None:
    text = (DOCS / "cli.md").read_text()
    section = text.split(f"## `leadscore {name}", 1)[1].split("\n## ", 1)[0]
    for param in COMMANDS[name].params:
        if isinstance(param, click.Option) and param.name != "help":
            longest = max(param.opts, key=len)
            assert f"`{longest}" in section, f"{name}: {longest} is not in docs/cli.md"


@pytest.mark.parametrize("name", NAMES)
def test_every_option_has_help(name: str) -> None:
    for param in COMMANDS[name].params:
        if isinstance(param, click.Option):
            assert param.help, f"{name}: {param.opts} has no help text"


def test_every_setting_is_documented_and_described() -> None:
    text = (DOCS / "settings.md").read_text()
    for name, field in Settings.model_fields.items():
        assert f"`LEADSCORE_{name.upper()}`" in text, f"docs/settings.md lacks {name}"
        assert field.description, f"setting {name} has no description"


def test_the_readme_opens_with_the_two_commands() -> None:
    lines = (DOCS.parent / "README.md").read_text().splitlines()
    head = "\n".join(lines[:6])
    assert "scripts/demo" in head
    assert "scripts/test" in head
    assert "scripts/test" in (DOCS.parent / ".ci" / "run").read_text()


def test_the_readme_python_example_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    text = (DOCS.parent / "README.md").read_text()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(DOCS.parent)
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["ingested"] is not None
