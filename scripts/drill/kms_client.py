"""Load and check for the kms-core fault drills (stdlib only).

  kms_client.py load PORT SECONDS ACKED   mixed writes (CreateKey,
      CreateAlias, Encrypt) from 4 threads until SECONDS pass or the server
      goes away; every answer 200 is appended to ACKED (JSON lines) before
      the next request: "acknowledged".
  kms_client.py check PORT ACKED          every acknowledged key, alias and
      ciphertext is intact; prints acknowledged vs found; exit 1 otherwise.
  kms_client.py fill PORT ACKED           writes (as load, one client) until
      20 requests in a row fail (the disk is full); prints the errors seen;
      exit 1 if the server stopped answering or an error was not a proper
      AWS JSON error.
  kms_client.py write PORT ACKED          one successful write round.

kms-core runs in development auth mode: any well-formed SigV4 header.
"""
import base64
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

AUTH = ("AWS4-HMAC-SHA256 Credential=111122223333/20250101/us-east-1/kms/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64)


def call(port, op, body, timeout=5):
    req = urllib.request.Request(
        "http://127.0.0.1:%d/" % port,
        data=json.dumps(body).encode(),
        headers={"X-Amz-Target": "TrentService." + op,
                 "Content-Type": "application/x-amz-json-1.1",
                 "Authorization": AUTH, "X-Amz-Date": "20250101T000000Z"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def load(port, seconds, acked_path):
    lock = threading.Lock()
    out = open(acked_path, "a")
    end = time.time() + seconds
    counts = {"requests": 0, "errors": 0}

    def ack(rec):
        with lock:
            out.write(json.dumps(rec) + "\n")
            out.flush()

    def worker():
        while time.time() < end:
            try:
                s, r = call(port, "CreateKey", {"Description": "drill"})
                if s != 200:
                    counts["errors"] += 1
                    continue
                key = r["KeyMetadata"]["KeyId"]
                ack({"key": key})
                alias = "alias/drill-" + uuid.uuid4().hex
                s, _ = call(port, "CreateAlias", {"AliasName": alias, "TargetKeyId": key})
                if s == 200:
                    ack({"alias": alias, "key": key})
                pt = base64.b64encode(os.urandom(32)).decode()
                s, r = call(port, "Encrypt", {"KeyId": alias, "Plaintext": pt,
                                              "EncryptionContext": {"drill": "kill9"}})
                if s == 200:
                    ack({"ct": r["CiphertextBlob"], "pt": pt, "key": key})
                counts["requests"] += 3
            except (OSError, ValueError):
                # The server was killed: stop.
                return

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.close()


def check(port, acked_path):
    keys, aliases, cts = set(), {}, []
    for line in open(acked_path):
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # a line cut by the kill: it was never acknowledged
        if "ct" in rec:
            cts.append(rec)
        elif "alias" in rec:
            aliases[rec["alias"]] = rec["key"]
        else:
            keys.add(rec["key"])
    found_keys = sum(1 for k in keys if call(port, "DescribeKey", {"KeyId": k})[0] == 200)
    listed = {}
    marker = None
    while True:
        body = {"Limit": 1000}
        if marker:
            body["Marker"] = marker
        s, r = call(port, "ListAliases", body)
        if s != 200:
            break
        for a in r.get("Aliases", []):
            listed[a["AliasName"]] = a.get("TargetKeyId")
        if not r.get("Truncated"):
            break
        marker = r["NextMarker"]
    found_aliases = sum(1 for a, k in aliases.items() if listed.get(a) == k)
    found_cts = 0
    for c in cts:
        s, r = call(port, "Decrypt", {"CiphertextBlob": c["ct"],
                                      "EncryptionContext": {"drill": "kill9"}})
        if s == 200 and r.get("Plaintext") == c["pt"]:
            found_cts += 1
    print("acknowledged: keys %d, aliases %d, ciphertexts %d | found intact: keys %d, aliases %d, ciphertexts %d"
          % (len(keys), len(aliases), len(cts), found_keys, found_aliases, found_cts))
    ok = (found_keys, found_aliases, found_cts) == (len(keys), len(aliases), len(cts))
    return 0 if ok else 1


def write_round(port, out):
    """CreateKey, CreateAlias, Encrypt; acknowledges what succeeded.
    Returns the (status, __type) of each failure."""
    failures = []
    s, r = call(port, "CreateKey", {"Description": "drill " + "x" * 2000})
    if s != 200:
        return [(s, r.get("__type"))]
    key = r["KeyMetadata"]["KeyId"]
    out.write(json.dumps({"key": key}) + "\n")
    alias = "alias/drill-" + uuid.uuid4().hex
    s, r = call(port, "CreateAlias", {"AliasName": alias, "TargetKeyId": key})
    if s == 200:
        out.write(json.dumps({"alias": alias, "key": key}) + "\n")
    else:
        failures.append((s, r.get("__type")))
    pt = base64.b64encode(os.urandom(32)).decode()
    s, r = call(port, "Encrypt", {"KeyId": key, "Plaintext": pt, "EncryptionContext": {"drill": "kill9"}})
    if s == 200:
        out.write(json.dumps({"ct": r["CiphertextBlob"], "pt": pt, "key": key}) + "\n")
    else:
        failures.append((s, r.get("__type")))
    out.flush()
    return failures


def fill(port, acked_path):
    seen = {}
    in_a_row = 0
    rounds = 0
    with open(acked_path, "a") as out:
        while in_a_row < 20 and rounds < 100000:
            rounds += 1
            try:
                failures = write_round(port, out)
            except (OSError, ValueError) as e:
                print("fill: the server stopped answering properly: %r" % (e,))
                return 1
            for f in failures:
                seen[f] = seen.get(f, 0) + 1
            in_a_row = in_a_row + 1 if failures else 0
    print("fill: %d write rounds; errors while full: %s" % (
        rounds, ", ".join("%s %s x%d" % (s, t, n) for (s, t), n in sorted(seen.items(), key=str)) or "none"))
    bad = [k for k in seen if k[1] is None or not (400 <= k[0] < 600)]
    return 1 if bad or not seen else 0


if __name__ == "__main__":
    if sys.argv[1] == "load":
        load(int(sys.argv[2]), float(sys.argv[3]), sys.argv[4])
    elif sys.argv[1] == "fill":
        sys.exit(fill(int(sys.argv[2]), sys.argv[3]))
    elif sys.argv[1] == "write":
        with open(sys.argv[3], "a") as out:
            failures = write_round(int(sys.argv[2]), out)
        print("write after space returned: %s" % ("ok" if not failures else failures))
        sys.exit(1 if failures else 0)
    else:
        sys.exit(check(int(sys.argv[2]), sys.argv[3]))
