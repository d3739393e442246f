#!/usr/bin/env python3
"""Writes the inputs of the token verification benchmark into a directory:

- `jwt.json`: a plugin configuration whose provider `main` requires a token on
  every path and verifies it against a local JWKS of fresh keys (RSA 2048,
  P-256, P-384, P-521, Ed25519 and a 32-byte HMAC secret);
- `no-token.json`: the same provider and keys with a rule that requires
  nothing, so a token sent is not verified: the baseline;
- `tokens-ALG.txt` for HS256, RS256, PS256, ES256, ES384, ES512 and EdDSA: COUNT
  distinct valid tokens, one a line, which differ in their `jti` claim, so
  that no two requests of a run share a verified-token cache entry.

Usage: python3 tests/bench/make_jwt_tokens.py DIRECTORY [COUNT]

Needs the `cryptography` package (Debian: python3-cryptography). Private keys
are thrown away after signing.
"""

import base64
import json
import os
import sys
import time

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ISSUER = "https://issuer.example"
FAR_FUTURE = 4102444800  # 2100-01-01T00:00:00Z
ALGORITHMS = ["HS256", "RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA"]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def uint(value: int, size: int) -> bytes:
    return value.to_bytes(size, "big")


# The hash and the byte length of r and s of each ECDSA algorithm (RFC 7518, section 3.4).
EC_HASHES = {"ES256": (hashes.SHA256(), 32), "ES384": (hashes.SHA384(), 48),
             "ES512": (hashes.SHA512(), 66)}


def sign(alg: str, key, data: bytes) -> bytes:
    if alg == "HS256":
        mac = hmac.HMAC(key, hashes.SHA256())
        mac.update(data)
        return mac.finalize()
    if alg == "RS256":
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    if alg == "PS256":
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        return key.sign(data, pss, hashes.SHA256())
    if alg in EC_HASHES:
        digest, size = EC_HASHES[alg]
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(digest)))
        return uint(r, size) + uint(s, size)
    if alg == "EdDSA":
        return key.sign(data)
    raise ValueError(alg)


def token(alg: str, kid: str, key, claims: dict) -> str:
    header = {"alg": alg, "typ": "JWT", "kid": kid}
    signing_input = ".".join(
        b64(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    return signing_input + "." + b64(sign(alg, key, signing_input.encode()))


def ec_jwk(key, kid: str, crv: str, size: int) -> dict:
    numbers = key.public_key().public_numbers()
    return {"kty": "EC", "kid": kid, "crv": crv,
            "x": b64(uint(numbers.x, size)), "y": b64(uint(numbers.y, size))}


def main() -> None:
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    out = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) == 3 else 2200
    os.makedirs(out, exist_ok=True)

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    p256 = ec.generate_private_key(ec.SECP256R1())
    p384 = ec.generate_private_key(ec.SECP384R1())
    p521 = ec.generate_private_key(ec.SECP521R1())
    ed = ed25519.Ed25519PrivateKey.generate()
    secret = os.urandom(32)
    rsa_numbers = rsa_key.public_key().public_numbers()
    ed_public = ed.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    jwks = {"keys": [
        {"kty": "RSA", "kid": "rsa-1", "use": "sig",
         "n": b64(uint(rsa_numbers.n, 256)), "e": b64(uint(rsa_numbers.e, 3))},
        ec_jwk(p256, "p256-1", "P-256", 32),
        ec_jwk(p384, "p384-1", "P-384", 48),
        ec_jwk(p521, "p521-1", "P-521", 66),
        {"kty": "OKP", "kid": "ed-1", "crv": "Ed25519", "x": b64(ed_public)},
        {"kty": "oct", "kid": "hs-1", "alg": "HS256", "k": b64(secret)},
    ]}
    provider = {"issuer": ISSUER, "audiences": ["api"],
                "local_jwks": {"inline_string": json.dumps(jwks)}}
    for name, rule in (("jwt.json", {"match": {"prefix": "/"}, "requires": {"provider_name": "main"}}),
                       ("no-token.json", {"match": {"prefix": "/"}})):
        # The request filter is off: it scans every header value, the token too,
        # and its cost would be counted with the verification's.
        config = {"filter": {"enabled": False},
                  "jwt": {"providers": {"main": provider}, "rules": [rule]}}
        with open(os.path.join(out, name), "w") as file:
            json.dump(config, file, indent=1)

    signers = {"HS256": (secret, "hs-1"), "RS256": (rsa_key, "rsa-1"), "PS256": (rsa_key, "rsa-1"),
               "ES256": (p256, "p256-1"), "ES384": (p384, "p384-1"), "ES512": (p521, "p521-1"),
               "EdDSA": (ed, "ed-1")}
    # A minute in the past, so that hosts whose clocks differ a little accept `iat`.
    issued = int(time.time()) - 60
    for alg in ALGORITHMS:
        key, kid = signers[alg]
        with open(os.path.join(out, f"tokens-{alg}.txt"), "w") as file:
            for index in range(count):
                claims = {"iss": ISSUER, "aud": "api", "sub": "alice", "iat": issued,
                          "exp": FAR_FUTURE, "jti": f"{alg}-{index}"}
                file.write(token(alg, kid, key, claims) + "\n")
    print(f"wrote {count} tokens for each of {', '.join(ALGORITHMS)} to {out}")


if __name__ == "__main__":
    main()
