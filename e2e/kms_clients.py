"""kms-core through the official AWS clients: the aws CLI and boto3.

Grows with the operations of issue 5; today it covers what exists
(GenerateRandom, validation and protocol errors).
"""
import base64
import json
import subprocess
import sys

import boto3
from botocore.exceptions import ClientError

ENDPOINT = sys.argv[1]
results = []


def case(name):
    def wrap(fn):
        try:
            fn()
            results.append((name, None))
        except Exception as e:  # noqa: BLE001 - report every failure
            results.append((name, repr(e)))
        return fn
    return wrap


def cli(*args):
    out = subprocess.run(
        ["aws", "kms", *args, "--endpoint-url", ENDPOINT, "--output", "json"],
        capture_output=True, text=True, timeout=60,
    )
    return out.returncode, out.stdout, out.stderr


client = boto3.client("kms", endpoint_url=ENDPOINT, region_name="us-east-1")


@case("cli generate-random")
def _():
    code, out, err = cli("generate-random", "--number-of-bytes", "32")
    assert code == 0, err
    assert len(base64.b64decode(json.loads(out)["Plaintext"])) == 32


@case("cli validation error is reported with AWS's message")
def _():
    code, _, err = cli("generate-random", "--number-of-bytes", "2000")
    assert code != 0
    assert "ValidationException" in err and "less than or equal to 1024" in err, err


@case("boto3 generate_random")
def _():
    a = client.generate_random(NumberOfBytes=1024)["Plaintext"]
    b = client.generate_random(NumberOfBytes=1024)["Plaintext"]
    assert len(a) == 1024 and a != b


@case("boto3 sees modelled error codes and a request id")
def _():
    try:
        client.generate_random(NumberOfBytes=1025)
    except ClientError as e:
        assert e.response["Error"]["Code"] == "ValidationException", e.response
        assert e.response["ResponseMetadata"]["RequestId"], e.response
    else:
        raise AssertionError("NumberOfBytes=1025 was accepted")


failed = [(n, e) for n, e in results if e]
for name, err in results:
    print(("FAIL " if err else "ok   ") + name + (f": {err}" if err else ""))
print(f"e2e: {len(results) - len(failed)} passed, {len(failed)} failed")
sys.exit(1 if failed else 0)
