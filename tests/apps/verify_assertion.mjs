// Verifies usher's identity assertion with the real `jose` library, as a
// Node backend would (docs/backend-identity.md):
//   node verify_assertion.mjs JWKS_URL AUDIENCE ISSUER TOKEN
// Prints the claims as JSON and exits 0, or prints jose's error code and
// exits 1.
import { createRemoteJWKSet, jwtVerify } from 'jose';

const [jwksUrl, audience, issuer, token] = process.argv.slice(2);
try {
  const jwks = createRemoteJWKSet(new URL(jwksUrl));
  const { payload } = await jwtVerify(token, jwks, {
    algorithms: ['ES256', 'RS256', 'EdDSA'],
    audience,
    issuer,
    requiredClaims: ['exp', 'iat', 'jti'],
  });
  console.log(JSON.stringify(payload));
} catch (e) {
  console.log(e.code || e.name);
  process.exit(1);
}
