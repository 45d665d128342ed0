"""Validate custom resources against the openAPIV3Schema of their upstream CRD, strictly.

A CRD schema leaves objects open unless it says otherwise; the API server prunes unknown fields
silently, which is how a typo in an Argo CD Application goes unnoticed. Here every object that
declares `properties` is closed (`additionalProperties: false`) unless the CRD marks it
`x-kubernetes-preserve-unknown-fields`, so an unknown field is an error.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jsonschema
import yaml


def close_objects(node: Any) -> Any:
    """Copy of an OpenAPI v3 schema with every described object closed to unknown fields."""
    if isinstance(node, list):
        return [close_objects(item) for item in node]
    if not isinstance(node, dict):
        return node
    closed = {key: close_objects(value) for key, value in node.items()}
    if (
        "properties" in closed
        and "additionalProperties" not in closed
        and not closed.get("x-kubernetes-preserve-unknown-fields")
    ):
        closed["additionalProperties"] = False
    # OpenAPI's `nullable` is JSON Schema's type union.
    if closed.pop("nullable", False) and isinstance(closed.get("type"), str):
        closed["type"] = [closed["type"], "null"]
    return closed


@functools.cache
def crd_validators(crd_path: Path) -> dict[tuple[str, str], jsonschema.protocols.Validator]:
    """(apiVersion, kind) -> strict validator, for every served version of a CRD file."""
    validators: dict[tuple[str, str], jsonschema.protocols.Validator] = {}
    for crd in yaml.safe_load_all(crd_path.read_text(encoding="utf-8")):
        if not crd or crd.get("kind") != "CustomResourceDefinition":
            continue
        group = crd["spec"]["group"]
        kind = crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = close_objects(version["schema"]["openAPIV3Schema"])
            # metadata is an ObjectMeta: kept open by the API server's own schema.
            schema["properties"]["metadata"] = {"type": "object"}
            validator_class = jsonschema.validators.validator_for(
                schema, jsonschema.Draft7Validator
            )
            validators[(f"{group}/{version['name']}", kind)] = validator_class(schema)
    return validators


def validate_custom_resource(document: dict[str, Any], crd_files: list[Path]) -> list[str]:
    """Errors of one custom resource, as readable `path: message` lines ([] when valid)."""
    key = (document.get("apiVersion", ""), document.get("kind", ""))
    for crd_path in crd_files:
        validator = crd_validators(crd_path).get(key)
        if validator is not None:
            return [
                f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
                for error in validator.iter_errors(document)
            ]
    return [f"no CRD among {[p.name for p in crd_files]} defines {key}"]
