"""Verify usher's identity assertion with PyJWT, as a Python backend would.

usage: verify_assertion.py JWKS_URL AUDIENCE ISSUER TOKEN [LEEWAY]
Prints the claims as JSON and exits 0, or prints the PyJWT error class and
exits 1. LEEWAY (seconds, may be negative) shifts the expiry check: a
negative one larger than the token's ttl makes an unexpired token count as
expired, which is how the expiry refusal is tested without waiting.
"""
import json
import sys

import jwt

jwks_url, audience, issuer, token = sys.argv[1:5]
leeway = int(sys.argv[5]) if len(sys.argv) > 5 else 0
try:
    key = jwt.PyJWKClient(jwks_url, cache_keys=False).get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token,
        key=key,
        algorithms=["ES256", "RS256", "EdDSA"],
        audience=audience,
        issuer=issuer,
        leeway=leeway,
        # A negative leeway would also make iat look in the future; only
        # the expiry is meant to be moved.
        options={"require": ["exp", "iat", "iss", "aud", "jti"], "verify_iat": leeway >= 0},
    )
except jwt.PyJWTError as e:
    print(type(e).__name__)
    sys.exit(1)
print(json.dumps(claims))
