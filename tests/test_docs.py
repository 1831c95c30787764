"""The documentation keeps up with the code: every command and option is in docs/cli.md."""

from __future__ import annotations

import re
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


def _row_of(section: str, option: str) -> str | None:
    """The text of the option's row in a section's table, when it has its own row."""
    for row in section.splitlines():
        names = re.findall(r"`(-[-\w]+)", row.split(" | ", 1)[0])
        if row.startswith("| `-") and names == [option]:
            return row.split(" | ", 1)[1]
    return None


def _stated(text: str) -> str | None:
    """The default a docs row or a help text states, as plain text: `table` (default),
    (default 5,000), (default `leadscore-demo`; ...), (default: LEADSCORE_X, else Y)."""
    found = re.search(r"`([^`]+)` \(default\)", text) or re.search(
        r"\(default:? ((?:[^;,)]|,\d{3})+(?:, else [^;)]+)?)", text
    )
    if found is None:
        return None
    return found.group(1).replace("`", "").replace(",000", "000").strip()


def _literal(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@pytest.mark.parametrize("name", NAMES)
def test_documented_defaults_are_the_commands(name: str) -> None:
    # The docs said each option's default, --help too, and nothing compared
    # them: `--data-dir`'s help said "default: LEADSCORE_DATA_DIR" where
    # docs/cli.md (and the settings) say "else leadscore-data".
    text = (DOCS / "cli.md").read_text()
    section = text.split(f"## `leadscore {name}", 1)[1].split("\n## ", 1)[0]
    for param in COMMANDS[name].params:
        if not isinstance(param, click.Option) or param.name == "help":
            continue
        row = _row_of(section, max(param.opts, key=len))
        docs = None if row is None else _stated(row)
        helped = _stated(param.help or "")
        default = param.default
        if docs is None or docs.split()[0] in ("now", "its", "any", "every", "the"):
            continue  # not stated there, or said in words (now, its last event)
        if isinstance(default, int | float | str) and not param.is_flag:
            assert docs == _literal(default), (name, param.opts, docs, default)
        elif helped is not None:
            # From the environment, else a setting's default: the same fallback in both.
            assert _fallback(docs) == _fallback(helped), (name, param.opts, docs, helped)


def _fallback(stated: str) -> str | None:
    """What applies without the environment variable: `LEADSCORE_X, else Y` is Y."""
    if ", else " in stated:
        return stated.split(", else ", 1)[1]
    return None if stated.startswith("LEADSCORE_") else stated
