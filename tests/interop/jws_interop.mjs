// jws_interop.mjs - JWS/JWT interoperability between the project
// (core/src/jws.c, through tests/interop/jws_tool) and the npm `jose`
// package pinned in tests/interop/package.json.  Run by CTest as
// unit.jws_interop:  node jws_interop.mjs <path to jws_tool>
//
// Checks, each of which fails the test:
//  1. a token the project signs verifies with jose's jwtVerify, using the
//     JWKS the project exports;
//  2. jose rejects that token with one signature byte flipped;
//  3. a token jose signs (EdDSA, kid, key exported as a JWK) verifies in
//     the project, claims intact;
//  4. the project rejects that jose token with "alg" tampered (HS256 with
//     the public key as the HMAC secret, "none"), with no kid, with an
//     unknown kid, and with a wrong audience.
// It never skips: a missing node_modules/jose is a failure.
import { spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const tool = process.argv[2];
if (!tool) {
  console.error('usage: node jws_interop.mjs <path to jws_tool>');
  process.exit(1);
}

let jose;
try {
  jose = await import('jose');
} catch (e) {
  console.error(`FAIL: cannot load the npm package jose (${e.code || e.message}).\n` +
                `Run \`npm ci\` in ${here} (tests/interop) to install it.`);
  process.exit(1);
}

const ISS = 'https://iam.lunal.test';
const AUD = 'gateway';
let failures = 0;
let checks = 0;

function check(cond, what) {
  checks++;
  if (cond) {
    console.log(`ok   ${what}`);
  } else {
    failures++;
    console.log(`FAIL ${what}`);
  }
}

const b64u = (buf) => Buffer.from(buf).toString('base64url');
const json64 = (obj) => b64u(JSON.stringify(obj));

const work = mkdtempSync(join(tmpdir(), 'luna-jws-interop-'));
try {
  // ---- project signs, jose verifies ----
  const mint = spawnSync(tool, ['mint', 'luna-interop-1', ISS, AUD, '300'], { encoding: 'utf8' });
  if (mint.status !== 0) {
    console.error(`FAIL: jws_tool mint exited ${mint.status}: ${mint.stderr}`);
    process.exit(1);
  }
  const { jwks, token } = JSON.parse(mint.stdout);
  check(Array.isArray(jwks.keys) && jwks.keys.length === 1 && jwks.keys[0].kid === 'luna-interop-1',
        'project exports a one-key JWKS');

  const keySet = jose.createLocalJWKSet(jwks);
  try {
    const { payload, protectedHeader } = await jose.jwtVerify(token, keySet, {
      algorithms: ['EdDSA'], issuer: ISS, audience: AUD, typ: 'JWT', requiredClaims: ['exp'],
    });
    check(protectedHeader.alg === 'EdDSA' && protectedHeader.kid === 'luna-interop-1',
          'jose reads the project header (alg EdDSA, kid)');
    check(payload.sub === 'luna-interop-subject' && payload.luna && payload.luna.tenant === 't-1',
          'jose verifies a project token and sees its claims');
  } catch (e) {
    check(false, `jose verifies a project token (${e.code}: ${e.message})`);
  }
  // Also through importJWK, the other way a relying party loads one key.
  try {
    const key = await jose.importJWK(jwks.keys[0], 'EdDSA');
    await jose.jwtVerify(token, key, { algorithms: ['EdDSA'] });
    check(true, 'jose verifies a project token with the imported JWK');
  } catch (e) {
    check(false, `jose verifies with importJWK (${e.code}: ${e.message})`);
  }

  const [h, p, s] = token.split('.');
  const sig = Buffer.from(s, 'base64url');
  check(sig.length === 64, 'project signature is 64 bytes');
  for (const pos of [0, 31, 63]) {
    const bad = Buffer.from(sig);
    bad[pos] ^= 0x01;
    try {
      await jose.jwtVerify(`${h}.${p}.${b64u(bad)}`, keySet, { algorithms: ['EdDSA'] });
      check(false, `jose rejects a flipped signature byte ${pos}`);
    } catch (e) {
      check(e.code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
            `jose rejects a flipped signature byte ${pos} (${e.code})`);
    }
  }

  // ---- jose signs, project verifies ----
  const { publicKey, privateKey } = await jose.generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const jwk = await jose.exportJWK(publicKey);
  const kid = 'jose-key-1';
  const joseSet = { keys: [{ ...jwk, kid, alg: 'EdDSA', use: 'sig' }] };
  const jwksPath = join(work, 'jose-jwks.json');
  writeFileSync(jwksPath, JSON.stringify(joseSet));

  const projectVerify = (tok, aud = AUD) => {
    const r = spawnSync(tool, ['verify', jwksPath, ISS, aud], { input: tok, encoding: 'utf8' });
    return { status: r.status, out: r.stdout.trim(), err: r.stderr.trim() };
  };

  const joseToken = await new jose.SignJWT({ scope: 'jobs:submit', n: 42 })
    .setProtectedHeader({ alg: 'EdDSA', kid, typ: 'JWT' })
    .setIssuer(ISS).setAudience([AUD, 'kms']).setSubject('jose-subject')
    .setIssuedAt().setNotBefore('0s').setExpirationTime('5m')
    .sign(privateKey);
  let r = projectVerify(joseToken);
  check(r.status === 0, `project verifies a jose token (exit ${r.status} ${r.out} ${r.err})`);
  if (r.status === 0) {
    const claims = JSON.parse(r.out);
    check(claims.sub === 'jose-subject' && claims.scope === 'jobs:submit' && claims.n === 42,
          'project returns the jose claims intact');
  }
  // jose's default header has no typ: still fine.
  const noTyp = await new jose.SignJWT({}).setProtectedHeader({ alg: 'EdDSA', kid })
    .setIssuer(ISS).setAudience(AUD).setExpirationTime('5m').sign(privateKey);
  r = projectVerify(noTyp);
  check(r.status === 0, `project verifies a jose token without typ (exit ${r.status} ${r.out})`);

  // ---- refusals of tampered jose tokens ----
  const [jh, jp, js] = joseToken.split('.');
  const header = JSON.parse(Buffer.from(jh, 'base64url').toString());

  // alg switched to HS256, MAC keyed with the public key (raw and as JWK text).
  for (const [label, secret] of [['raw x', Buffer.from(jwk.x, 'base64url')],
                                 ['JWKS text', Buffer.from(JSON.stringify(joseSet))]]) {
    const hh = json64({ ...header, alg: 'HS256' });
    const mac = createHmac('sha256', secret).update(`${hh}.${jp}`).digest();
    r = projectVerify(`${hh}.${jp}.${b64u(mac)}`);
    check(r.status === 2 && r.out === 'verify_failed',
          `project rejects alg HS256 keyed with the ${label} (${r.out})`);
  }
  // alg switched, original EdDSA signature kept.
  for (const alg of ['HS256', 'RS256', 'ES256', 'none', 'Ed25519']) {
    r = projectVerify(`${json64({ ...header, alg })}.${jp}.${js}`);
    check(r.status === 2 && r.out === 'verify_failed', `project rejects alg ${alg} (${r.out})`);
  }
  r = projectVerify(`${json64({ ...header, alg: 'none' })}.${jp}.`);
  check(r.status === 2 && r.out === 'verify_failed', `project rejects an unsigned alg none token (${r.out})`);
  // Signature byte flipped.
  const jsig = Buffer.from(js, 'base64url');
  jsig[5] ^= 0x80;
  r = projectVerify(`${jh}.${jp}.${b64u(jsig)}`);
  check(r.status === 2 && r.out === 'verify_failed', `project rejects a flipped jose signature (${r.out})`);
  // kid missing, kid unknown, wrong audience, embedded jwk.
  const noKid = await new jose.SignJWT({}).setProtectedHeader({ alg: 'EdDSA' })
    .setExpirationTime('5m').sign(privateKey);
  r = projectVerify(noKid);
  check(r.status === 2 && r.out === 'malformed', `project rejects a jose token without kid (${r.out})`);
  const other = await jose.generateKeyPair('EdDSA', { crv: 'Ed25519' });
  const unknown = await new jose.SignJWT({}).setProtectedHeader({ alg: 'EdDSA', kid: 'jose-key-2' })
    .setExpirationTime('5m').sign(other.privateKey);
  r = projectVerify(unknown);
  check(r.status === 2 && r.out === 'not_found', `project rejects an unknown kid (${r.out})`);
  const embedded = await new jose.SignJWT({}).setProtectedHeader({
    alg: 'EdDSA', kid, jwk: await jose.exportJWK(other.publicKey),
  }).setIssuer(ISS).setAudience(AUD).setExpirationTime('5m').sign(other.privateKey);
  r = projectVerify(embedded);
  check(r.status === 2 && r.out === 'malformed', `project refuses an embedded jwk header (${r.out})`);
  r = projectVerify(joseToken, 'someone-else');
  check(r.status === 2 && r.out === 'verify_failed', `project rejects a wrong audience (${r.out})`);
  const expired = await new jose.SignJWT({}).setProtectedHeader({ alg: 'EdDSA', kid })
    .setIssuer(ISS).setAudience(AUD).setExpirationTime(Math.floor(Date.now() / 1000) - 3600)
    .sign(privateKey);
  r = projectVerify(expired);
  check(r.status === 2 && r.out === 'expired', `project rejects an expired jose token (${r.out})`);
} finally {
  rmSync(work, { recursive: true, force: true });
}

console.log(`${checks - failures}/${checks} checks passed`);
process.exit(failures === 0 && checks > 0 ? 0 : 1);
