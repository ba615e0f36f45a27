"""kms-core through the official AWS clients: the aws CLI, boto3 and the
AWS Encryption SDK for Python."""
import base64
import json
import os
import subprocess
import sys

import boto3
from botocore.exceptions import ClientError

ENDPOINT = sys.argv[1]
WORK = sys.argv[2]
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


@case("cli session: create key, alias, encrypt a file, decrypt, disable, schedule deletion")
def _():
    code, out, err = cli("create-key", "--description", "e2e cli key")
    assert code == 0, err
    key = json.loads(out)["KeyMetadata"]
    assert key["KeyState"] == "Enabled" and key["KeySpec"] == "SYMMETRIC_DEFAULT", key
    code, _, err = cli("create-alias", "--alias-name", "alias/e2e-cli", "--target-key-id", key["KeyId"])
    assert code == 0, err
    src = os.path.join(WORK, "secret.txt")
    with open(src, "wb") as f:
        f.write(b"launch codes\n" * 100)
    code, out, err = cli("encrypt", "--key-id", "alias/e2e-cli", "--plaintext", "fileb://" + src,
                         "--encryption-context", "app=e2e", "--query", "CiphertextBlob", "--output", "text")
    assert code == 0, err
    blob_path = os.path.join(WORK, "secret.enc")
    with open(blob_path, "wb") as f:
        f.write(base64.b64decode(out.strip()))
    code, out, err = cli("decrypt", "--ciphertext-blob", "fileb://" + blob_path,
                         "--encryption-context", "app=e2e", "--query", "Plaintext", "--output", "text")
    assert code == 0, err
    with open(src, "rb") as f:
        assert base64.b64decode(out.strip()) == f.read()
    code, _, err = cli("decrypt", "--ciphertext-blob", "fileb://" + blob_path)
    assert code != 0 and "InvalidCiphertextException" in err, err
    code, _, err = cli("disable-key", "--key-id", key["KeyId"])
    assert code == 0, err
    code, _, err = cli("encrypt", "--key-id", "alias/e2e-cli", "--plaintext", "fileb://" + src)
    assert code != 0 and "DisabledException" in err, err
    code, out, err = cli("schedule-key-deletion", "--key-id", key["Arn"], "--pending-window-in-days", "7")
    assert code == 0, err
    assert json.loads(out)["KeyState"] == "PendingDeletion"
    code, out, err = cli("describe-key", "--key-id", "alias/e2e-cli")
    assert json.loads(out)["KeyMetadata"]["KeyState"] == "PendingDeletion", out


@case("aws encryption sdk: 1 MB file round trip with a kms-core key")
def _():
    import aws_encryption_sdk
    from aws_encryption_sdk import CommitmentPolicy
    import botocore.session

    os.environ["AWS_ENDPOINT_URL_KMS"] = ENDPOINT
    arn = client.create_key(Description="esdk")["KeyMetadata"]["Arn"]
    sdk = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
    provider = aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(
        key_ids=[arn], botocore_session=botocore.session.Session())
    data = os.urandom(1024 * 1024)
    ciphertext, _ = sdk.encrypt(source=data, key_provider=provider,
                                encryption_context={"purpose": "e2e"})
    assert ciphertext != data and len(ciphertext) > len(data)
    plaintext, header = sdk.decrypt(source=ciphertext, key_provider=provider)
    assert plaintext == data
    assert header.encryption_context["purpose"] == "e2e"


@case("cli: external key store demo is connected; encrypt/decrypt with alias/demo-xks")
def _():
    code, out, err = cli("describe-custom-key-stores", "--custom-key-store-name", "demo-xks")
    assert code == 0, err
    store = json.loads(out)["CustomKeyStores"][0]
    assert store["ConnectionState"] == "CONNECTED", store
    assert store["CustomKeyStoreType"] == "EXTERNAL_KEY_STORE", store
    assert "RawSecretAccessKey" not in out
    code, out, err = cli("describe-key", "--key-id", "alias/demo-xks")
    assert code == 0, err
    meta = json.loads(out)["KeyMetadata"]
    assert meta["Origin"] == "EXTERNAL_KEY_STORE" and meta["CustomKeyStoreId"] == store["CustomKeyStoreId"], meta
    assert meta["XksKeyConfiguration"]["Id"] == "demo-xks-key-1", meta
    src = os.path.join(WORK, "xks-secret.txt")
    with open(src, "wb") as f:
        f.write(b"held outside AWS\n" * 50)
    code, out, err = cli("encrypt", "--key-id", "alias/demo-xks", "--plaintext", "fileb://" + src,
                         "--encryption-context", "app=xks", "--query", "CiphertextBlob", "--output", "text")
    assert code == 0, err
    blob_path = os.path.join(WORK, "xks-secret.enc")
    with open(blob_path, "wb") as f:
        f.write(base64.b64decode(out.strip()))
    code, out, err = cli("decrypt", "--ciphertext-blob", "fileb://" + blob_path,
                         "--encryption-context", "app=xks", "--query", "Plaintext", "--output", "text")
    assert code == 0, err
    with open(src, "rb") as f:
        assert base64.b64decode(out.strip()) == f.read()
    code, _, err = cli("decrypt", "--ciphertext-blob", "fileb://" + blob_path)
    assert code != 0 and "InvalidCiphertextException" in err, err
    code, _, err = cli("create-key", "--origin", "EXTERNAL_KEY_STORE", "--custom-key-store-id",
                       store["CustomKeyStoreId"], "--xks-key-id", "demo-xks-key-1")
    assert code != 0 and "XksKeyAlreadyInUseException" in err, err


@case("boto3: external key store errors (wrong proxy credential, store with keys)")
def _():
    store = client.describe_custom_key_stores(CustomKeyStoreName="demo-xks")["CustomKeyStores"][0]
    proxy = store["XksProxyConfiguration"]
    try:
        client.create_custom_key_store(
            CustomKeyStoreName="e2e-wrong-credential", CustomKeyStoreType="EXTERNAL_KEY_STORE",
            XksProxyUriEndpoint=proxy["UriEndpoint"], XksProxyUriPath="/other/kms/xks/v1",
            XksProxyConnectivity="PUBLIC_ENDPOINT",
            XksProxyAuthenticationCredential={"AccessKeyId": "AAAAAAAAAAAAAAAAAAAA",
                                              "RawSecretAccessKey": "A" * 43})
        raise AssertionError("created with a wrong credential")
    except ClientError as e:
        assert e.response["Error"]["Code"] in (
            "XksProxyIncorrectAuthenticationCredentialException",
            "XksProxyInvalidConfigurationException"), e.response
    try:
        client.disconnect_custom_key_store(CustomKeyStoreId=store["CustomKeyStoreId"])
        client.delete_custom_key_store(CustomKeyStoreId=store["CustomKeyStoreId"])
        raise AssertionError("deleted a store holding keys")
    except ClientError as e:
        assert e.response["Error"]["Code"] == "CustomKeyStoreHasCMKsException", e.response
    finally:
        client.connect_custom_key_store(CustomKeyStoreId=store["CustomKeyStoreId"])
    import time
    for _ in range(100):
        s = client.describe_custom_key_stores(CustomKeyStoreId=store["CustomKeyStoreId"])["CustomKeyStores"][0]
        if s["ConnectionState"] != "CONNECTING":
            break
        time.sleep(0.05)
    assert s["ConnectionState"] == "CONNECTED", s


@case("aws encryption sdk: 1 MB file round trip with an external key store key (alias/demo-xks)")
def _():
    import aws_encryption_sdk
    from aws_encryption_sdk import CommitmentPolicy
    import botocore.session

    os.environ["AWS_ENDPOINT_URL_KMS"] = ENDPOINT
    arn = client.describe_key(KeyId="alias/demo-xks")["KeyMetadata"]["Arn"]
    sdk = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
    provider = aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(
        key_ids=[arn], botocore_session=botocore.session.Session())
    data = os.urandom(1024 * 1024)
    ciphertext, _ = sdk.encrypt(source=data, key_provider=provider,
                                encryption_context={"purpose": "e2e-xks"})
    plaintext, header = sdk.decrypt(source=ciphertext, key_provider=provider)
    assert plaintext == data
    assert header.encryption_context["purpose"] == "e2e-xks"


failed = [(n, e) for n, e in results if e]
for name, err in results:
    print(("FAIL " if err else "ok   ") + name + (f": {err}" if err else ""))
print(f"e2e: {len(results) - len(failed)} passed, {len(failed)} failed")
sys.exit(1 if failed else 0)
