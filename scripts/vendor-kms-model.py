#!/usr/bin/env python3
"""Copies the AWS KMS API model into kms-core as data.

Source: ../shared/aws-models/kms/service-2.json (botocore 1.44.5, Apache-2.0).
Every "documentation" string is removed: the project uses the model's data
(operations, shapes, constraints, enums, errors), not AWS's prose.
"""
import json
import pathlib
import sys

root = pathlib.Path(__file__).resolve().parent.parent
src = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else root.parent / "shared/aws-models/kms/service-2.json"
dst = root / "crates/kms-core/model/kms-2014-11-01.json"


def strip(node):
    if isinstance(node, dict):
        return {k: strip(v) for k, v in node.items() if k not in ("documentation", "deprecatedMessage")}
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


model = strip(json.loads(src.read_text()))
dst.write_text(json.dumps(model, indent=1, sort_keys=True) + "\n")
print(f"wrote {dst} ({len(model['operations'])} operations, {len(model['shapes'])} shapes)")
