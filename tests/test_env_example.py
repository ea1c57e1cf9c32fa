"""`.env.example` names every environment variable the settings (and the processes' configs)
read, found in their source, so that a variable added without documentation fails here."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV_EXAMPLE = ROOT / ".env.example"
# config/settings/env.py's readers, and devstack's.
ENV_READERS = {
    "get_str",
    "get_bool",
    "get_int",
    "get_choice",
    "get_list",
    "get_networks",
    "service_url",
    "service_urls",
    "using_embedded",
    "_int_env",
}
VARIABLE = re.compile(r"[A-Z][A-Z0-9_]+")


def variables_read(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            function = node.func
            name = function.attr if isinstance(function, ast.Attribute) else ast.unparse(function)
            on_environ = (
                isinstance(function, ast.Attribute) and ast.unparse(function.value) == "os.environ"
            )
            if name in ENV_READERS or name == "os.getenv" or (on_environ and name == "get"):
                found.add(node.args[0].value)
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
            found.add(ast.literal_eval(node.slice))
    return {name for name in found if isinstance(name, str) and VARIABLE.fullmatch(name)}


def documented() -> set[str]:
    line = re.compile(r"^#?\s?([A-Z][A-Z0-9_]+)=", re.MULTILINE)
    return set(line.findall(ENV_EXAMPLE.read_text()))


def test_every_variable_the_settings_read_is_in_the_env_example():
    sources = [*ROOT.glob("config/**/*.py"), ROOT / "devstack" / "config.py"]
    read = set().union(*(variables_read(path) for path in sources))

    assert len(read) > 50
    assert read - documented() == set()
