// Signs a JWT with the real `jose` library (the OIDC peer's own), for
// usher's bearer-token tests: node mint_jwt.mjs JWKS_FILE CLAIMS_JSON MODE
// MODE: RS256 | ES256 (the JWKS's key of that alg), or hs256-public (HS256
// keyed with the RS256 public key's PEM: the algorithm-confusion attack).
import { readFileSync } from 'node:fs';
import { importJWK, exportSPKI, SignJWT } from 'jose';

const [file, claimsJson, mode] = process.argv.slice(2);
const keys = JSON.parse(readFileSync(file, 'utf8')).keys;
const claims = JSON.parse(claimsJson);
if (mode === 'hs256-public') {
  const rsa = keys.find((k) => k.alg === 'RS256');
  const { d, p, q, dp, dq, qi, ...pub } = rsa;
  const pem = await exportSPKI(await importJWK(pub, 'RS256'));
  const token = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: rsa.kid })
    .sign(new TextEncoder().encode(pem));
  console.log(token);
} else {
  const jwk = keys.find((k) => k.alg === mode);
  const key = await importJWK(jwk, mode);
  console.log(await new SignJWT(claims).setProtectedHeader({ alg: mode, kid: jwk.kid }).sign(key));
}
