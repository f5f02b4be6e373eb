"""The one table of the suite's options (``SuiteSettings``' fields): the README documents every option with its
default, each option follows Locust's conventions, and the settings' defaults are the options' defaults."""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path

from grpc_user.locust.settings.suite import OPTIONS, SuiteSettings, settings_from_options

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_options() -> dict[str, str]:
    """``--flag`` -> the default column of the README's options table."""
    text = README.read_text()
    section = text[text.index("## The suite's options") :]
    section = section[: section.index("\n## ", 1)]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) == 3 and cells[0].startswith("`--"):
            rows[cells[0].strip("`").split()[0]] = cells[1]
    return rows


def test_the_readme_documents_every_option_with_its_default_and_no_other():
    documented = readme_options()
    declared = {option.flag: option.default_text for option in OPTIONS}
    assert documented == declared


def test_every_option_has_a_flag_a_help_a_group_and_locusts_environment_variable():
    flags = [option.flag for option in OPTIONS]
    assert len(flags) == len(set(flags))
    for option in OPTIONS:
        assert option.env_var == "LOCUST_" + option.flag.removeprefix("--").replace("-", "_").upper()
        assert option.help and option.group and "%" not in option.help


def test_the_settings_defaults_are_the_options_defaults_parsed():
    assert settings_from_options(argparse.Namespace(**{o.dest: o.default for o in OPTIONS})) == SuiteSettings()
    assert settings_from_options(argparse.Namespace()) == SuiteSettings()


def test_options_that_run_commands_or_carry_secrets_are_kept_out_of_the_web_ui():
    hidden = {option.flag for option in OPTIONS if not option.web_ui}
    assert hidden == {"--action", "--action-failure", "--action-timeout", "--grpc-ca", "--grpc-cert", "--grpc-key",
                      "--grpc-authority", "--grpc-metadata", "--grpc-token-env"}  # fmt: skip


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    return names | {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}


def test_the_settings_foundation_imports_nothing_of_the_plugins_features_and_loads_locust_only_to_parse():
    folder = Path(__file__).resolve().parents[1] / "grpc_user" / "locust" / "settings"
    for path in folder.glob("*.py"):
        imported = imports_of(path)
        plugin = {name for name in imported if name.startswith("grpc_user.locust")}
        assert all(name.startswith("grpc_user.locust.settings") for name in plugin), (path.name, plugin)
        if path.name not in ("arguments.py", "spawn_defaults.py"):  # Locust's parser; Locust's defaults memoized
            assert not {name for name in imported if name.split(".")[0] in ("locust", "gevent")}, path.name
