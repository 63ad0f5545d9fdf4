"""Declarative field mappings between each external system and the canonical model.

One YAML file per system (mappings/<system>.yaml); `engine` applies them.
"""
from .engine import Mapping, MappingConfigError, load_mapping, parse_mapping, validate_all

__all__ = ["Mapping", "MappingConfigError", "load_mapping", "parse_mapping", "validate_all"]
