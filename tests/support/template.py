"""template.yaml as data: a CloudFormation-aware YAML loader and moto resources built from it.

Unit tests build their DynamoDB tables from the template itself, so a schema drift fails a test.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from storyflow_local import cfn_yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"


@lru_cache(maxsize=1)
def load_template() -> dict[str, Any]:
    return cfn_yaml.load(TEMPLATE)


def resources(kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in load_template()["Resources"].items() if r["Type"] == kind}


def create_tables(dynamodb: Any) -> dict[str, str]:
    """Create every AWS::DynamoDB::Table of the template (named by its logical id); returns id -> name."""
    names = {}
    for logical_id, resource in resources("AWS::DynamoDB::Table").items():
        props = resource["Properties"]
        request: dict[str, Any] = {
            "TableName": logical_id,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if "GlobalSecondaryIndexes" in props:
            request["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        dynamodb.create_table(**request)
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            dynamodb.update_time_to_live(TableName=logical_id, TimeToLiveSpecification=ttl)
        names[logical_id] = logical_id
    return names
