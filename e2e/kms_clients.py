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


def cli_file_round_trip(key, name, data, context):
    """aws kms encrypt of a file with an encryption context, decrypt of the
    blob from a file; the blob without its context is InvalidCiphertext.
    Returns the plaintext file's path."""
    src = os.path.join(WORK, name + ".txt")
    with open(src, "wb") as f:
        f.write(data)
    code, out, err = cli("encrypt", "--key-id", key, "--plaintext", "fileb://" + src,
                         "--encryption-context", context, "--query", "CiphertextBlob", "--output", "text")
    assert code == 0, err
    blob_path = os.path.join(WORK, name + ".enc")
    with open(blob_path, "wb") as f:
        f.write(base64.b64decode(out.strip()))
    code, out, err = cli("decrypt", "--ciphertext-blob", "fileb://" + blob_path,
                         "--encryption-context", context, "--query", "Plaintext", "--output", "text")
    assert code == 0, err
    assert base64.b64decode(out.strip()) == data
    code, _, err = cli("decrypt", "--ciphertext-blob", "fileb://" + blob_path)
    assert code != 0 and "InvalidCiphertextException" in err, err
    return src


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
    src = cli_file_round_trip("alias/e2e-cli", "secret", b"launch codes\n" * 100, "app=e2e")
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



# --- key types: interop with independent implementations (Python
# `cryptography` and the openssl command line) using GetPublicKey ---------

from cryptography.exceptions import InvalidSignature  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, mlkem, padding, rsa  # noqa: E402,F401
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed  # noqa: E402

HASHES = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}



def new_key(spec, usage):
    return client.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]["KeyId"]


def public_key(key_id):
    der = client.get_public_key(KeyId=key_id)["PublicKey"]
    return der, serialization.load_der_public_key(der)


def ed25519ph_verify(public, message, signature):
    """Ed25519ph (RFC 8032 5.1.7, SHA-512 prehash, empty context) written
    here from the RFC's equations: neither cryptography nor openssl 3.0 has
    it. Checks [S]B == R + [k]A in extended twisted Edwards coordinates."""
    import hashlib
    p = 2 ** 255 - 19
    q = 2 ** 252 + 27742317777372353535851937790883648493
    d = -121665 * pow(121666, p - 2, p) % p
    sqrt_m1 = pow(2, (p - 1) // 4, p)

    def decode(b):
        y = int.from_bytes(b, "little")
        sign, y = y >> 255, y & ((1 << 255) - 1)
        if y >= p:
            return None
        x2 = (y * y - 1) * pow(d * y * y + 1, p - 2, p) % p
        x = pow(x2, (p + 3) // 8, p)
        if (x * x - x2) % p:
            x = x * sqrt_m1 % p
        if (x * x - x2) % p or (x == 0 and sign):
            return None
        if x & 1 != sign:
            x = p - x
        return (x, y, 1, x * y % p)

    def add(P, Q):
        a = (P[1] - P[0]) * (Q[1] - Q[0]) % p
        b = (P[1] + P[0]) * (Q[1] + Q[0]) % p
        c = 2 * d * P[3] * Q[3] % p
        e = 2 * P[2] * Q[2] % p
        E, F, G, H = b - a, e - c, e + c, b + a
        return (E * F % p, G * H % p, F * G % p, E * H % p)

    def mul(k, P):
        R = (0, 1, 1, 0)
        while k:
            if k & 1:
                R = add(R, P)
            P, k = add(P, P), k >> 1
        return R

    def encode(P):
        zi = pow(P[2], p - 2, p)
        x, y = P[0] * zi % p, P[1] * zi % p
        return (y | ((x & 1) << 255)).to_bytes(32, "little")

    if len(signature) != 64:
        return False
    base = decode((4 * pow(5, p - 2, p) % p).to_bytes(32, "little"))
    A, R = decode(public), decode(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if A is None or R is None or s >= q:
        return False
    dom2 = b"SigEd25519 no Ed25519 collisions\x01\x00"
    ph = hashlib.sha512(message).digest()
    k = int.from_bytes(hashlib.sha512(dom2 + signature[:32] + public + ph).digest(), "little") % q
    return encode(mul(s, base)) == encode(add(R, mul(k, A)))


def verify_outside(pub, alg, message, signature, prehashed=False):
    """Raises InvalidSignature when `signature` does not verify."""
    h = HASHES.get(alg[-3:])
    if alg == "ED25519_PH_SHA_512":
        raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        if not ed25519ph_verify(raw, message, signature):
            raise InvalidSignature()
    elif alg.startswith("RSASSA_PSS"):
        pub.verify(signature, message, padding.PSS(mgf=padding.MGF1(h()), salt_length=h.digest_size),
                   Prehashed(h()) if prehashed else h())
    elif alg.startswith("RSASSA_PKCS1"):
        pub.verify(signature, message, padding.PKCS1v15(), Prehashed(h()) if prehashed else h())
    elif alg.startswith("ECDSA"):
        pub.verify(signature, message, ec.ECDSA(Prehashed(h()) if prehashed else h()))
    else:  # Ed25519, ML-DSA: the message itself
        pub.verify(signature, message)


@case("kms-core signatures verify with python cryptography (every algorithm, RAW and DIGEST)")
def _():
    message = os.urandom(4096)
    for spec in ["RSA_2048", "ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521", "ECC_SECG_P256K1",
                 "ECC_NIST_EDWARDS25519", "ML_DSA_44", "ML_DSA_65", "ML_DSA_87"]:
        key_id = new_key(spec, "SIGN_VERIFY")
        _, pub = public_key(key_id)
        algs = client.describe_key(KeyId=key_id)["KeyMetadata"]["SigningAlgorithms"]
        for alg in algs:
            sig = client.sign(KeyId=key_id, Message=message, SigningAlgorithm=alg)["Signature"]
            verify_outside(pub, alg, message, sig)
            try:
                verify_outside(pub, alg, message + b"x", sig)
            except InvalidSignature:
                pass
            else:
                raise AssertionError(f"{spec} {alg}: a tampered message verified")
            h = HASHES.get(alg[-3:])
            if alg == "ML_DSA_SHAKE_256":
                # External mu computed here (cryptography's MLDSAMuHasher),
                # signed by kms-core, verified as pure ML-DSA over the message.
                hasher = mldsa.MLDSAMuHasher(pub)
                hasher.update(message)
                mu = hasher.finalize()
                sig = client.sign(KeyId=key_id, Message=mu, MessageType="EXTERNAL_MU",
                                  SigningAlgorithm=alg)["Signature"]
                pub.verify(sig, message)
            elif alg == "ED25519_PH_SHA_512":
                d = hashes.Hash(hashes.SHA512())
                d.update(message)
                sig = client.sign(KeyId=key_id, Message=d.finalize(), MessageType="DIGEST",
                                  SigningAlgorithm=alg)["Signature"]
                verify_outside(pub, alg, message, sig)
            elif alg.startswith(("RSASSA", "ECDSA")):
                d = hashes.Hash(h())
                d.update(message)
                digest = d.finalize()
                sig = client.sign(KeyId=key_id, Message=digest, MessageType="DIGEST",
                                  SigningAlgorithm=alg)["Signature"]
                verify_outside(pub, alg, message, sig)
                verify_outside(pub, alg, digest, sig, prehashed=True)


@case("signatures made outside verify in kms-core; a bad one is KMSInvalidSignatureException")
def _():
    # The reverse direction needs the private key: a data key pair.
    wrapping = client.create_key()["KeyMetadata"]["KeyId"]
    pair = client.generate_data_key_pair(KeyId=wrapping, KeyPairSpec="ECC_NIST_P256")
    priv = serialization.load_der_private_key(pair["PrivateKeyPlaintext"], None)
    pub = serialization.load_der_public_key(pair["PublicKey"])
    assert priv.public_key().public_numbers() == pub.public_numbers()
    sig = priv.sign(b"made outside", ec.ECDSA(hashes.SHA256()))
    pub.verify(sig, b"made outside", ec.ECDSA(hashes.SHA256()))
    key_id = new_key("ECC_NIST_P256", "SIGN_VERIFY")
    good = client.sign(KeyId=key_id, Message=b"m", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    assert client.verify(KeyId=key_id, Message=b"m", Signature=good,
                         SigningAlgorithm="ECDSA_SHA_256")["SignatureValid"]
    try:
        client.verify(KeyId=key_id, Message=b"m", Signature=sig, SigningAlgorithm="ECDSA_SHA_256")
    except ClientError as e:
        assert e.response["Error"]["Code"] == "KMSInvalidSignatureException", e.response
    else:
        raise AssertionError("a foreign signature verified")


@case("openssl CLI verifies kms-core signatures (aws CLI sign + get-public-key)")
def _():
    msg = os.path.join(WORK, "release.tar")
    with open(msg, "wb") as f:
        f.write(os.urandom(3000))
    for spec, alg, opts in [
        ("ECC_NIST_P256", "ECDSA_SHA_256", []),
        ("ECC_NIST_P384", "ECDSA_SHA_384", []),
        ("RSA_3072", "RSASSA_PKCS1_V1_5_SHA_256", []),
        ("RSA_3072", "RSASSA_PSS_SHA_512", ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:64"]),
    ]:
        code, out, err = cli("create-key", "--key-spec", spec, "--key-usage", "SIGN_VERIFY")
        assert code == 0, err
        key_id = json.loads(out)["KeyMetadata"]["KeyId"]
        code, out, err = cli("sign", "--key-id", key_id, "--message", "fileb://" + msg,
                             "--message-type", "RAW", "--signing-algorithm", alg,
                             "--query", "Signature", "--output", "text")
        assert code == 0, err
        sig_path = os.path.join(WORK, "release.sig")
        with open(sig_path, "wb") as f:
            f.write(base64.b64decode(out.strip()))
        code, out, err = cli("get-public-key", "--key-id", key_id, "--query", "PublicKey", "--output", "text")
        assert code == 0, err
        der_path = os.path.join(WORK, "pub.der")
        with open(der_path, "wb") as f:
            f.write(base64.b64decode(out.strip()))
        r = subprocess.run(["openssl", "dgst", "-sha" + alg[-3:], "-keyform", "DER", "-verify", der_path,
                            *opts, "-signature", sig_path, msg], capture_output=True, text=True)
        assert r.returncode == 0 and "Verified OK" in r.stdout, (spec, alg, r.stdout, r.stderr)


@case("RSA: encrypted outside (cryptography and openssl pkeyutl), decrypted by kms-core; limits")
def _():
    key_id = new_key("RSA_2048", "ENCRYPT_DECRYPT")
    der, pub = public_key(key_id)
    for alg, h, limit in [("RSAES_OAEP_SHA_1", hashes.SHA1, 214), ("RSAES_OAEP_SHA_256", hashes.SHA256, 190)]:
        data = os.urandom(limit)
        ct = pub.encrypt(data, padding.OAEP(mgf=padding.MGF1(h()), algorithm=h(), label=None))
        out = client.decrypt(KeyId=key_id, CiphertextBlob=ct, EncryptionAlgorithm=alg)
        assert out["Plaintext"] == data and out["EncryptionAlgorithm"] == alg
        ct = client.encrypt(KeyId=key_id, Plaintext=data, EncryptionAlgorithm=alg)["CiphertextBlob"]
        assert len(ct) == 256
        assert client.decrypt(KeyId=key_id, CiphertextBlob=ct, EncryptionAlgorithm=alg)["Plaintext"] == data
        try:
            client.encrypt(KeyId=key_id, Plaintext=data + b"x", EncryptionAlgorithm=alg)
        except ClientError as e:
            assert e.response["Error"]["Code"] == "ValidationException", e.response
        else:
            raise AssertionError(f"{alg}: {limit + 1} bytes were encrypted")
    der_path = os.path.join(WORK, "rsa.der")
    with open(der_path, "wb") as f:
        f.write(der)
    src = os.path.join(WORK, "small.txt")
    with open(src, "wb") as f:
        f.write(b"openssl to kms-core")
    r = subprocess.run(["openssl", "pkeyutl", "-encrypt", "-pubin", "-keyform", "DER", "-inkey", der_path,
                        "-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256",
                        "-pkeyopt", "rsa_mgf1_md:sha256", "-in", src], capture_output=True)
    assert r.returncode == 0, r.stderr
    out = client.decrypt(KeyId=key_id, CiphertextBlob=r.stdout, EncryptionAlgorithm="RSAES_OAEP_SHA_256")
    assert out["Plaintext"] == b"openssl to kms-core"


@case("ECDH: DeriveSharedSecret equals the peer's computation (cryptography), every curve")
def _():
    for spec, curve in [("ECC_NIST_P256", ec.SECP256R1()), ("ECC_NIST_P384", ec.SECP384R1()),
                        ("ECC_NIST_P521", ec.SECP521R1())]:
        key_id = new_key(spec, "KEY_AGREEMENT")
        _, kms_pub = public_key(key_id)
        peer = ec.generate_private_key(curve)
        peer_der = peer.public_key().public_bytes(serialization.Encoding.DER,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)
        out = client.derive_shared_secret(KeyId=key_id, KeyAgreementAlgorithm="ECDH", PublicKey=peer_der)
        assert out["SharedSecret"] == peer.exchange(ec.ECDH(), kms_pub), spec


@case("HMAC: GenerateMac equals python hmac; VerifyMac rejects a wrong tag")
def _():
    key_id = new_key("HMAC_256", "GENERATE_VERIFY_MAC")
    mac = client.generate_mac(KeyId=key_id, Message=b"token", MacAlgorithm="HMAC_SHA_256")["Mac"]
    assert len(mac) == 32
    assert client.verify_mac(KeyId=key_id, Message=b"token", Mac=mac, MacAlgorithm="HMAC_SHA_256")["MacValid"]
    try:
        client.verify_mac(KeyId=key_id, Message=b"token2", Mac=mac, MacAlgorithm="HMAC_SHA_256")
    except ClientError as e:
        assert e.response["Error"]["Code"] == "KMSInvalidMacException", e.response
    else:
        raise AssertionError("a wrong MAC verified")


@case("ML-KEM: encapsulated outside (cryptography) with the public key, decapsulated by kms-core")
def _():
    # cryptography 50 has ML-KEM-768 and -1024 (not 512): 512 round trips inside only.
    for spec in ["ML_KEM_512", "ML_KEM_768", "ML_KEM_1024"]:
        key_id = new_key(spec, "ENCAPSULATE_DECAPSULATE")
        if spec != "ML_KEM_512":
            _, pub = public_key(key_id)
            secret, ct = pub.encapsulate()
            out = client.decapsulate(KeyId=key_id, SharedSecretCiphertextBlob=ct,
                                     EncapsulationAlgorithm="ML_KEM")
            assert out["SharedSecret"] == secret, spec
        e = client.encapsulate(KeyId=key_id, EncapsulationAlgorithm="ML_KEM")
        d = client.decapsulate(KeyId=key_id, SharedSecretCiphertextBlob=e["SharedSecretCiphertextBlob"],
                               EncapsulationAlgorithm="ML_KEM")
        assert d["SharedSecret"] == e["SharedSecret"]


@case("data key pairs of every spec load in cryptography and match their public keys")
def _():
    wrapping = client.create_key()["KeyMetadata"]["KeyId"]
    for spec in ["RSA_2048", "RSA_3072", "RSA_4096", "ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521",
                 "ECC_SECG_P256K1", "ECC_NIST_EDWARDS25519", "ML_KEM_512", "ML_KEM_768", "ML_KEM_1024"]:
        pair = client.generate_data_key_pair(KeyId=wrapping, KeyPairSpec=spec, EncryptionContext={"s": spec})
        plain = client.decrypt(CiphertextBlob=pair["PrivateKeyCiphertextBlob"],
                               EncryptionContext={"s": spec})["Plaintext"]
        assert plain == pair["PrivateKeyPlaintext"], spec
        if spec == "ML_KEM_512":
            # cryptography 50 has no ML-KEM-512: check the seed-form PKCS#8
            # structure (the Rust tests decapsulate with it).
            assert bytes([0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x04, 1]) in plain[:32]
            assert plain[-66:-64] == bytes([0x80, 0x40]) and len(plain) == 86, plain.hex()
            continue
        priv = serialization.load_der_private_key(pair["PrivateKeyPlaintext"], None)
        pub_der = priv.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
        assert pub_der == pair["PublicKey"], spec
        if spec.startswith("ML_KEM"):
            secret, ct = priv.public_key().encapsulate()
            assert priv.decapsulate(ct) == secret, spec
        if spec.startswith("RSA"):
            ct = priv.public_key().encrypt(b"x", padding.OAEP(mgf=padding.MGF1(hashes.SHA256()),
                                                            algorithm=hashes.SHA256(), label=None))
            assert priv.decrypt(ct, padding.OAEP(mgf=padding.MGF1(hashes.SHA256()),
                                                 algorithm=hashes.SHA256(), label=None)) == b"x"
    out = client.generate_data_key_pair_without_plaintext(KeyId=wrapping, KeyPairSpec="ECC_NIST_P384")
    assert "PrivateKeyPlaintext" not in out and out["PublicKey"]


@case("wrong key type: Sign with a symmetric key is InvalidKeyUsageException with AWS's message")
def _():
    md = client.create_key()["KeyMetadata"]
    try:
        client.sign(KeyId=md["KeyId"], Message=b"m", SigningAlgorithm="ECDSA_SHA_256")
    except ClientError as e:
        assert e.response["Error"]["Code"] == "InvalidKeyUsageException", e.response
        assert e.response["Error"]["Message"] == \
            f"{md['Arn']} key usage is ENCRYPT_DECRYPT which is not valid for Sign.", e.response
    else:
        raise AssertionError("a symmetric key signed")

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
    cli_file_round_trip("alias/demo-xks", "xks-secret", b"held outside AWS\n" * 50, "app=xks")
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


OTHER_ACCOUNT = "444455556666"


def other_account_client():
    """Development mode: a 12-digit access key id is that account's root."""
    return boto3.client("kms", endpoint_url=ENDPOINT, region_name="us-east-1",
                        aws_access_key_id=OTHER_ACCOUNT,
                        aws_secret_access_key="development-mode-accepts-any")


def cli_as_other(*args):
    env = dict(os.environ, AWS_ACCESS_KEY_ID=OTHER_ACCOUNT)
    out = subprocess.run(
        ["aws", "kms", *args, "--endpoint-url", ENDPOINT, "--output", "json"],
        capture_output=True, text=True, timeout=60, env=env,
    )
    return out.returncode, out.stdout, out.stderr


@case("cli grant flow: create-grant, use by token from another account, list-grants, retire, revoke")
def _():
    arn = client.create_key()["KeyMetadata"]["Arn"]
    # The default key policy allows no other account; a grant does.
    blob = client.encrypt(KeyId=arn, Plaintext=b"granted")["CiphertextBlob"]
    blob_path = os.path.join(WORK, "granted.enc")
    with open(blob_path, "wb") as f:
        f.write(blob)
    code, _, err = cli_as_other("decrypt", "--key-id", arn, "--ciphertext-blob", "fileb://" + blob_path)
    assert code != 0 and "AccessDeniedException" in err, err
    grantee = f"arn:aws:iam::{OTHER_ACCOUNT}:root"
    code, out, err = cli("create-grant", "--key-id", arn, "--grantee-principal", grantee,
                         "--retiring-principal", grantee, "--operations", "Decrypt", "DescribeKey",
                         "--name", "e2e-grant")
    assert code == 0, err
    grant = json.loads(out)
    code, out, err = cli_as_other("decrypt", "--key-id", arn, "--ciphertext-blob", "fileb://" + blob_path,
                                  "--grant-tokens", grant["GrantToken"], "--query", "Plaintext",
                                  "--output", "text")
    assert code == 0, err
    assert base64.b64decode(out.strip()) == b"granted"
    code, out, err = cli("list-grants", "--key-id", arn)
    assert code == 0, err
    grants = json.loads(out)["Grants"]
    assert [g["GrantId"] for g in grants] == [grant["GrantId"]], grants
    assert grants[0]["GranteePrincipal"] == grantee and grants[0]["Name"] == "e2e-grant"
    # The retiring principal retires it by token; then it is gone.
    code, _, err = cli_as_other("retire-grant", "--grant-token", grant["GrantToken"])
    assert code == 0, err
    code, out, err = cli("list-grants", "--key-id", arn)
    assert code == 0 and json.loads(out)["Grants"] == [], out + err
    code, _, err = cli_as_other("decrypt", "--key-id", arn, "--ciphertext-blob", "fileb://" + blob_path)
    assert code != 0 and "AccessDeniedException" in err, err
    # RevokeGrant by the key's account.
    code, out, err = cli("create-grant", "--key-id", arn, "--grantee-principal", grantee,
                         "--operations", "Decrypt")
    assert code == 0, err
    code, _, err = cli("revoke-grant", "--key-id", arn, "--grant-id", json.loads(out)["GrantId"])
    assert code == 0, err
    code, out, err = cli("list-grants", "--key-id", arn)
    assert code == 0 and json.loads(out)["Grants"] == [], out + err


@case("boto3 cross-account decrypt allowed by the key policy")
def _():
    other = other_account_client()
    key = client.create_key()["KeyMetadata"]
    arn, account = key["Arn"], key["AWSAccountId"]
    blob = client.encrypt(KeyId=arn, Plaintext=b"cross-account")["CiphertextBlob"]
    try:
        other.decrypt(KeyId=arn, CiphertextBlob=blob)
        raise AssertionError("another account decrypted under the default key policy")
    except ClientError as e:
        assert e.response["Error"]["Code"] == "AccessDeniedException", e.response
        assert f"arn:aws:iam::{OTHER_ACCOUNT}:root is not authorized to perform: kms:Decrypt" in \
            e.response["Error"]["Message"], e.response
    policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "Owner", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
         "Action": "kms:*", "Resource": "*"},
        {"Sid": "OtherAccountDecrypt", "Effect": "Allow",
         "Principal": {"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"},
         "Action": "kms:Decrypt", "Resource": "*"}]})
    client.put_key_policy(KeyId=arn, PolicyName="default", Policy=policy)
    assert client.get_key_policy(KeyId=arn, PolicyName="default")["Policy"] == policy
    assert other.decrypt(KeyId=arn, CiphertextBlob=blob)["Plaintext"] == b"cross-account"
    # Only Decrypt, and lists never show the other account's keys.
    try:
        other.encrypt(KeyId=arn, Plaintext=b"x")
        raise AssertionError("Encrypt allowed")
    except ClientError as e:
        assert e.response["Error"]["Code"] == "AccessDeniedException", e.response
    assert all(k["KeyArn"].split(":")[4] == OTHER_ACCOUNT for k in other.list_keys()["Keys"])


@case("boto3 malformed key policy and the lockout safety check")
def _():
    key_id = client.create_key()["KeyMetadata"]["KeyId"]
    try:
        client.put_key_policy(KeyId=key_id, PolicyName="default", Policy='{"Statement": []}')
        raise AssertionError("empty Statement accepted")
    except ClientError as e:
        assert e.response["Error"]["Code"] == "MalformedPolicyDocumentException", e.response
    locked = json.dumps({"Statement": [{"Effect": "Allow",
                                        "Principal": {"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"},
                                        "Action": "kms:*", "Resource": "*"}]})
    try:
        client.put_key_policy(KeyId=key_id, PolicyName="default", Policy=locked)
        raise AssertionError("lockout accepted")
    except ClientError as e:
        assert e.response["Error"]["Code"] == "MalformedPolicyDocumentException", e.response
        assert "will not allow you to update the key policy" in e.response["Error"]["Message"]


failed = [(n, e) for n, e in results if e]
for name, err in results:
    print(("FAIL " if err else "ok   ") + name + (f": {err}" if err else ""))
print(f"e2e: {len(results) - len(failed)} passed, {len(failed)} failed")
sys.exit(1 if failed else 0)
