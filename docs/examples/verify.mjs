// Verify licensd answers and license files with WebCrypto (browsers, Deno, Node >= 20).
// Usage: node verify.mjs BASE_URL LICENSE_KEY [FINGERPRINT]
// (the demo fetches the public keys; a real app embeds them instead)

const BEGIN = "-----BEGIN LICENSD LICENSE FILE-----";
const END = "-----END LICENSD LICENSE FILE-----";
const b64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const hex = (buf) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, "0")).join("");
const sha256Hex = async (bytes) => hex(await crypto.subtle.digest("SHA-256", bytes));

// {key_id: CryptoKey} from the JSON of GET /v1/signing-keys (or the copy your app embeds).
export async function importKeySet(keySet) {
  const keys = {};
  for (const k of keySet.keys) {
    if (k.algorithm !== "ed25519") continue;
    keys[k.key_id] = await crypto.subtle.importKey(
      "raw", b64(k.public_key), { name: "Ed25519" }, false, ["verify"]);
  }
  return keys;
}

// Resolves to the body bytes if the answer is signed by one of `keys` for this method,
// path (and query, exactly as requested), request body (the exact bytes sent) and
// status, and recent; throws otherwise.
export async function verifyResponse(keys, method, path, requestBody, response, maxSkewSecs = 300) {
  const header = response.headers.get("licensd-signature") ?? "";
  const fields = Object.fromEntries(header.split(",").map((part) => {
    const i = part.indexOf("=");
    return [part.slice(0, i).trim(), part.slice(i + 1).trim()];
  }));
  if (fields.v !== "2") throw new Error("unsigned answer or unsupported signature version");
  if (fields.alg !== "ed25519") throw new Error("unknown algorithm");
  const key = keys[fields.keyid];
  if (!key) throw new Error("signed by an unknown or retired key");
  const body = new Uint8Array(await response.arrayBuffer());
  const message = [
    "licensd-response-v2", fields.ts, method.toUpperCase(), path,
    await sha256Hex(new TextEncoder().encode(requestBody)), String(response.status),
    await sha256Hex(body),
  ].join("\n");
  const ok = await crypto.subtle.verify(
    { name: "Ed25519" }, key, b64(fields.sig), new TextEncoder().encode(message));
  if (!ok) throw new Error("bad signature");
  if (Math.abs(Date.now() / 1000 - Number(fields.ts)) > maxSkewSecs) throw new Error("stale signature");
  return body;
}

// Throws unless the answer names the key (and device) that were sent.
export function checkAnswerIsFor(answer, licenseKey, fingerprint = undefined) {
  const key = answer.license?.key;
  if (key != null && key.trim().toUpperCase() !== licenseKey.trim().toUpperCase())
    throw new Error("answer is for another license key");
  const device = answer.activation?.fingerprint;
  if (device != null && device !== fingerprint) throw new Error("answer is for another device");
}

// Resolves to the payload of a valid, unexpired license file; throws otherwise.
export async function verifyLicenseFile(keys, text, nowSecs = Date.now() / 1000) {
  const inner = text.split(BEGIN)[1].split(END)[0].replace(/\s+/g, "");
  const [payloadB64, sigB64] = inner.split(".");
  const payload = b64(payloadB64);
  const key = keys[JSON.parse(new TextDecoder().decode(payload)).key_id];
  if (!key) throw new Error("signed by an unknown or retired key");
  const ok = await crypto.subtle.verify({ name: "Ed25519" }, key, b64(sigB64), payload);
  if (!ok) throw new Error("bad signature");
  const data = JSON.parse(new TextDecoder().decode(payload));
  if (nowSecs >= data.expires_at) throw new Error("license file expired");
  return data;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [base, licenseKey, fingerprint] = process.argv.slice(2);
  const keys = await importKeySet(await (await fetch(`${base}/v1/signing-keys`)).json());
  const post = async (path, request) => {
    const body = JSON.stringify(request);
    const response = await fetch(base + path, {
      method: "POST", headers: { "content-type": "application/json" }, body,
    });
    return JSON.parse(new TextDecoder().decode(
      await verifyResponse(keys, "POST", path, body, response)));
  };
  const nonce = crypto.randomUUID();
  const answer = await post("/v1/licenses/validate", { key: licenseKey, fingerprint, nonce });
  checkAnswerIsFor(answer, licenseKey, fingerprint);
  if (answer.nonce !== nonce) throw new Error("answer is not for this request");
  console.log("validate:", answer.code, "(signature ok, request bound, nonce ok)");
  const file = await post("/v1/licenses/checkout", { key: licenseKey, fingerprint, ttl_days: 7 });
  const data = await verifyLicenseFile(keys, file.license_file);
  checkAnswerIsFor(data, licenseKey, fingerprint);
  console.log("license file: valid until", data.expires_at, "for", data.license.key, "signed by", data.key_id);
}
