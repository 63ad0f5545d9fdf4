"""YAML for mapping files, read so that a code stays the text it was written as.

PyYAML follows YAML 1.1, where `No`, `On`, `Yes`, `off` are booleans and `000010` is the
octal number 8 — an SAP item number or a Y/N flag in a value map would silently change.
This loader resolves only `true`/`false` as booleans and only plain decimals as integers
(YAML 1.2's core schema); everything else stays a string.
"""
from __future__ import annotations

import re
from typing import Any

import yaml


class MappingLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans and integers."""


# Drop the 1.1 resolvers for bool and int, then add the 1.2 ones.
MappingLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
MappingLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
MappingLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?(?:0|[1-9][0-9]*))$"), list("-+0123456789"))

# Words YAML 1.1 would have read as booleans: named in the error when a true/false is expected.
YAML11_BOOLEAN_WORDS = frozenset({"y", "yes", "n", "no", "on", "off"})


def load(text: str) -> Any:
    return yaml.load(text, Loader=MappingLoader)  # noqa: S506 - a SafeLoader subclass


def bool_hint(value: Any) -> str:
    """A hint for a flag written as yes/no/on/off: it is a string here, say so."""
    if isinstance(value, str) and value.lower() in YAML11_BOOLEAN_WORDS:
        return f" ({value!r} is read as text here: write true or false)"
    return ""
